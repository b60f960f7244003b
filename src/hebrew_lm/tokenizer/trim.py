"""Vocabulary trimming: a multilingual base keeps only the tokens that text in its target languages uses,
so its embedding and output layer shrink (Gemma 3 270M: 262,144 rows, 168M of its 268M parameters, and
about half of every token's compute in the output projection on a CPU).

    hebrew-lm tokenizer trim --base_dir runs/realbase/gemma --corpus_dirs runs/realbase/hebrew_corpus \\
        runs/realbase/corpus --output_dir runs/realbase/gemma_trim

What is kept: every token the base's tokenizer produces on the corpora (both splits), its special tokens
(and those its chat template names), the 256 byte-fallback tokens, and, for a BPE tokenizer, both parts of
every merge that makes a kept token, until nothing more is added (so every merge that fired on the
corpora still can). Merges whose parts or result are gone are dropped, the rest keep their order, and ids
are renumbered in the base's order (a multiple of 8 in all: the next unused ids fill it). On the corpora
the trimmed tokenizer gives the same tokens as the base (checked on every document before anything is
written); text outside them falls back to shorter pieces and bytes, never to an unknown token where the
base has byte fallback. The model keeps the same rows of its embedding and output matrices: it computes
the same logits over the kept tokens (tested), and the softmax over fewer tokens is the only difference.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from hebrew_lm.runs import atomic_write_json, atomic_write_text, check_finished, claim_output_dir, clear_owned_dir, \
    fingerprint, mark_success, read_success, sha256_file

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


def _pair(merge: Any) -> tuple[str, str]:
    a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
    return a, b


def kept_token_ids(base_json: dict[str, Any], used: set[int], specials: set[int], multiple: int = 8) -> list[int]:
    """The ids to keep, in the base's order: the used and special ones, the byte-fallback tokens, and the
    parts of every merge that makes a kept token (to a fixpoint), filled up to a multiple of `multiple`."""
    model = base_json["model"]
    vocab: dict[str, int] = model["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    keep = {by_id[i] for i in used | specials if i in by_id}
    if model.get("byte_fallback"):
        keep |= {f"<0x{b:02X}>" for b in range(256) if f"<0x{b:02X}>" in vocab}
    if model.get("unk_token"):
        keep.add(model["unk_token"])
    makers: dict[str, list[tuple[str, str]]] = {}
    for merge in model.get("merges", []):
        a, b = _pair(merge)
        makers.setdefault(a + b, []).append((a, b))
    todo = list(keep)
    while todo:
        for a, b in makers.get(todo.pop(), ()):
            for part in (a, b):
                if part not in keep:
                    keep.add(part)
                    todo.append(part)
    ids = {vocab[t] for t in keep} | (specials - set(by_id))  # added tokens outside the model's vocab
    rest = (i for i in sorted(by_id) if i not in ids)
    while len(ids) % multiple:
        ids.add(next(rest))
    return sorted(ids)


def trimmed_tokenizer_json(base_json: dict[str, Any], old_ids: list[int]) -> dict[str, Any]:
    """The base's tokenizer.json with only `old_ids`, renumbered 0..n-1 in their order; merges whose parts
    or result are gone dropped; added tokens and the post-processor's special ids remapped."""
    new_of = {old: new for new, old in enumerate(old_ids)}
    out = json.loads(json.dumps(base_json))
    model = out["model"]
    model["vocab"] = {t: new_of[i] for t, i in model["vocab"].items() if i in new_of}
    if "merges" in model:
        kept = model["vocab"]
        model["merges"] = [m for m in model["merges"] if all(p in kept for p in (*_pair(m), "".join(_pair(m))))]
    out["added_tokens"] = [{**t, "id": new_of[t["id"]]} for t in out.get("added_tokens", []) if t["id"] in new_of]
    content_id = {**model["vocab"], **{t["content"]: t["id"] for t in out["added_tokens"]}}

    def remap(node: Any) -> None:  # TemplateProcessing's special_tokens: {"id", "ids", "tokens"}
        if isinstance(node, dict):
            if "ids" in node and "tokens" in node:
                node["ids"] = [content_id[t] for t in node["tokens"]]
            for value in node.values():
                remap(value)
        elif isinstance(node, list):
            for value in node:
                remap(value)

    remap(out.get("post_processor"))
    return out


def trim_model(model, old_ids: list[int]) -> None:
    """Keep the rows `old_ids` of the input embedding and the output layer, in place (a scaled embedding
    such as Gemma's keeps its class and scale); tied weights stay tied."""
    index = torch.tensor(old_ids)
    embedding = model.get_input_embeddings()
    embedding.weight = torch.nn.Parameter(embedding.weight.data[index].clone())
    embedding.num_embeddings = len(old_ids)
    if embedding.padding_idx is not None:
        embedding.padding_idx = old_ids.index(embedding.padding_idx) if embedding.padding_idx in old_ids else None
    head = model.get_output_embeddings()
    model.config.vocab_size = len(old_ids)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    else:
        head.weight = torch.nn.Parameter(head.weight.data[index].clone())
    head.out_features = len(old_ids)


def _remap_ids(value: Any, new_of: dict[int, int]) -> Any:
    if isinstance(value, list):
        return [new_of[v] for v in value if v in new_of]
    return new_of.get(value) if isinstance(value, int) else value


def used_ids(tokenizer, texts: list[str], batch: int = 1000) -> tuple[set[int], list[list[int]]]:
    """Every id the tokenizer gives the texts (no special tokens added), and each text's ids."""
    encoded: list[list[int]] = []
    for start in range(0, len(texts), batch):
        encoded += tokenizer(texts[start : start + batch], add_special_tokens=False)["input_ids"]
    return {i for ids in encoded for i in ids}, encoded


def special_ids(tokenizer) -> set[int]:
    """The tokenizer's special tokens and the added tokens its chat template names (Gemma's turn markers)."""
    ids = set(tokenizer.all_special_ids)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    for token_id, token in tokenizer.added_tokens_decoder.items():
        if token.content in template:
            ids.add(token_id)
    return ids


def run(config, force: bool = False) -> Path:
    """Trim `config.base_dir`'s vocabulary to what `config.corpus_dirs` use, into `config.output_dir`."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.corpus.shards import load_manifest, read_texts

    c = config
    base, out = Path(c.base_dir), Path(c.output_dir)
    if not (base / "config.json").is_file() or not (base / "tokenizer.json").is_file():
        raise ValueError(f"tokenizer trim: {base} is not a Hugging Face model folder with a tokenizer.json")
    for corpus in c.corpus_dirs:
        load_manifest(Path(corpus))
    weights = next((p for p in sorted(base.glob("*.safetensors"))), None)
    fp = fingerprint({"version": FORMAT_VERSION, "tokenizer": sha256_file(base / "tokenizer.json"),
                      "weights": sha256_file(weights) if weights else str(base),
                      "corpora": [read_success(Path(d)).get("fingerprint") for d in c.corpus_dirs]})
    if check_finished(out, fp, "trim", force):
        return out

    texts = [t for d in c.corpus_dirs for split in ("train", "validation") for t in read_texts(Path(d), split)]
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    used, encoded = used_ids(tokenizer, texts)
    base_json = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    old_ids = kept_token_ids(base_json, used, special_ids(tokenizer))
    trimmed_json = trimmed_tokenizer_json(base_json, old_ids)
    trimmed = Tokenizer.from_str(json.dumps(trimmed_json))
    again = [e.ids for start in range(0, len(texts), 1000)
             for e in trimmed.encode_batch(texts[start : start + 1000], add_special_tokens=False)]
    for text, ids, new in zip(texts, encoded, again):  # the promise, checked before anything is written
        if [old_ids[i] for i in new] != ids:
            raise ValueError(f"tokenizer trim: the trimmed tokenizer splits this corpus text otherwise than the base "
                             f"({text[:80]!r}); the base's tokenizer is not one this trimming supports")

    claim_output_dir(out, "trim")
    clear_owned_dir(out, "trim", "trimming again")
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    rows_before = model.get_input_embeddings().weight.shape[0]
    parameters_before = sum(p.numel() for p in model.parameters())
    trim_model(model, old_ids)
    new_of = {old: new for new, old in enumerate(old_ids)}
    for holder in (model.config, model.generation_config):
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(holder, key, None) is not None:
                setattr(holder, key, _remap_ids(getattr(holder, key), new_of))
    model.save_pretrained(str(out))
    (out / "tokenizer.json").write_text(json.dumps(trimmed_json, ensure_ascii=False), encoding="utf-8")
    for name in ("special_tokens_map.json", "chat_template.jinja"):
        if (base / name).is_file():
            (out / name).write_bytes((base / name).read_bytes())
    tok_config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    if "added_tokens_decoder" in tok_config:
        tok_config["added_tokens_decoder"] = {str(new_of[int(i)]): t for i, t in tok_config["added_tokens_decoder"].items()
                                              if int(i) in new_of}
    atomic_write_json(out / "tokenizer_config.json", tok_config)
    for path in {*base.glob("NOTICE*"), *base.glob("LICENSE*"), *base.glob("*TERMS*")}:
        (out / path.name).write_bytes(path.read_bytes())  # the base's terms go with its weights

    stats = {"base": str(base), "corpora": list(c.corpus_dirs), "documents": len(texts),
             "vocabulary_before": rows_before, "vocabulary_after": len(old_ids), "tokens_used": len(used),
             "merges_before": len(base_json["model"].get("merges", [])),
             "merges_after": len(trimmed_json["model"].get("merges", [])),
             "parameters_before": parameters_before, "parameters_after": sum(p.numel() for p in model.parameters())}
    atomic_write_json(out / "trim.json", stats)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "README.md", f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [hebrew-lm]
---

# {base.name}, vocabulary trimmed to {len(old_ids):,} tokens

`hebrew-lm tokenizer trim` kept the {len(old_ids):,} of {rows_before:,} tokens that {', '.join(c.corpus_dirs)} use
(with the special, byte-fallback and merge-part tokens), renumbered in the base's order: {stats['parameters_before']:,}
-> {stats['parameters_after']:,} parameters. On that text it tokenizes as the base does and computes the same
logits over the kept tokens. The license and terms are the base's ({base}/README.md).
""")
    mark_success(out, fp, stage="trim")
    log.info("tokenizer trim: %s tokens of %s kept (%s used by %d documents); %s -> %s parameters -> %s",
             f"{len(old_ids):,}", f"{rows_before:,}", f"{len(used):,}", len(texts), f"{parameters_before:,}",
             f"{stats['parameters_after']:,}", out)
    return out
