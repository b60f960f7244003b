"""Hebrew vocabulary extension: a base causal LM whose tokenizer spells Hebrew letter by letter (or byte by
byte) gets N Hebrew tokens, learned on a Hebrew corpus with the toolkit's own BPE trainer, without
changing any existing id; each new embedding row (input and output) starts as the mean of the base's
rows for the pieces that spelled that token before (DictaLM 2.0 added 1,000 Hebrew tokens this way).

    hebrew-lm tokenizer extend configs/tiny-decoder.yaml           # a stage: RUN_DIR/extended
    hebrew-lm tokenizer extend --base_dir runs/x/decoder/model --corpus_dir runs/x/hebrew_corpus --add 1000 \\
        --output_dir runs/x/extended

How: a character-aligned byte-level BPE is trained on the corpus's train split; its merges are taken in
the order it learned them, keeping only merges whose result holds the byte 0xD7 (the lead byte of every
Hebrew letter, U+05C0-U+05FF, and of nothing else) and whose two parts the extended vocabulary already
has, until N new tokens are added. They are appended to the base's merges (lowest priority) with new ids
after every existing one. A merge that holds 0xD7 can only fire where the text has a Hebrew letter, so a
string without Hebrew encodes to exactly the same ids as before (tested).

Output: a Hugging Face folder (model with resized embeddings, tokenizer, generation config) that
`AutoTokenizer`/`AutoModelForCausalLM` load with no custom code, and extension.json: tokens added, tokens
per word before and after on the corpus's validation split, and words per second of a training step and
of generation before and after.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import torch

from hebrew_lm.runs import atomic_write_json, atomic_write_text, check_finished, claim_output_dir, clear_owned_dir, fingerprint, \
    mark_success, read_success, sha256_file

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1
WORD = re.compile(r"\w+")


def hebrew_lead() -> str:
    """The byte-level character of byte 0xD7 (every Hebrew letter's UTF-8 lead byte)."""
    from hebrew_lm.tokenizer.bpe import bytes_to_unicode

    return bytes_to_unicode()[0xD7]


def learn_hebrew_merges(texts: list[str], base_vocab: dict[str, int], add: int) -> list[tuple[str, str]]:
    """Up to `add` merges, in the order a Hebrew BPE learned them, each making a new token that holds 0xD7
    from two parts the base (or an earlier kept merge) already has."""
    from hebrew_lm.tokenizer.bpe import train_byte_level_bpe

    batches = (texts[i : i + 1000] for i in range(0, len(texts), 1000))
    hebrew = train_byte_level_bpe(batches, vocab_size=add * 3 + 600, min_frequency=2)
    merges = json.loads(hebrew.to_str())["model"]["merges"]
    lead, have, kept = hebrew_lead(), set(base_vocab), []
    for merge in merges:
        a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
        token = a + b
        if lead in token and a in have and b in have and token not in have:
            kept.append((a, b))
            have.add(token)
            if len(kept) == add:
                break
    return kept


def extended_tokenizer_json(base: dict[str, Any], merges: list[tuple[str, str]], first_id: int) -> dict[str, Any]:
    """The base tokenizer.json with `merges` appended and their tokens given ids from `first_id`."""
    data = json.loads(json.dumps(base))
    model = data["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"tokenizer extend needs a BPE tokenizer, got {model.get('type')}")
    string_merges = model["merges"] and isinstance(model["merges"][0], str)
    for i, (a, b) in enumerate(merges):
        model["vocab"][a + b] = first_id + i
        model["merges"].append(f"{a} {b}" if string_merges else [a, b])
    return data


def embedding_rows(tokens: int) -> int:
    """Rows of an embedding the toolkit makes or grows for a tokenizer of `tokens` tokens: the next multiple
    of 8. llama.cpp's converter pads a NemotronH (and Mamba) vocabulary to a multiple of 8 and expects the
    weights to have that many rows, as published NemotronH models do (`hebrew-lm export gguf`); GPUs like
    the multiple too. The rows past the tokenizer are never an input and, never a target, learn low logits."""
    return -(-tokens // 8) * 8


def init_new_rows(model, base_tokenizer, new_tokens: list[str], first_id: int) -> None:
    """Resize the embeddings and set each new row to the mean of the base's rows for the pieces the base
    tokenizer spelled that token with."""
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(old, embedding_rows(first_id + len(new_tokens))), mean_resizing=False)
    set_rows(model, {first_id + i: [t.id for t in base_tokenizer.model.tokenize(token)]
                     for i, token in enumerate(new_tokens)})


def grow_embeddings(model, tokenizer, like: dict[str, str], base_tokens: int) -> None:
    """Embeddings for the tokens a stage appended to a base tokenizer of `base_tokens` tokens (SFT's chat
    markers), which may land past the model's rows or in its padding rows: each starts at the mean of the
    base's rows, or for a token in `like`, as the row of the base's token that `like[token]` names
    (`eos_token_id`: the end of a chat turn starts as the end of a text, which the base already predicts;
    a mean or padding row is almost never predicted, and a short SFT does not teach it)."""
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(embedding_rows(len(tokenizer)), mean_resizing=False)
    sources: dict[int, list[int] | slice] = {i: slice(0, base_tokens) for i in range(base_tokens, len(tokenizer))}
    for token, role in like.items():
        if (new := tokenizer.convert_tokens_to_ids(token)) in sources:
            sources[new] = [getattr(tokenizer, role)]
    set_rows(model, sources)


def set_rows(model, sources: dict[int, list[int] | slice]) -> None:
    """Set each row `new` (input, and output when untied) to the mean of the rows `sources[new]`."""
    inputs = model.get_input_embeddings().weight
    outputs = model.get_output_embeddings().weight if model.get_output_embeddings() is not None else None
    tied = outputs is None or outputs.data_ptr() == inputs.data_ptr()
    with torch.no_grad():
        for new, rows in sources.items():
            inputs[new] = inputs[rows].mean(0)
            if not tied:
                outputs[new] = outputs[rows].mean(0)


def tokens_per_word(tokenizer, texts: list[str]) -> float:
    words = sum(len(WORD.findall(t)) for t in texts)
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    return tokens / max(1, words)


def words_per_second(model_dir: Path, texts: list[str], seq: int = 256, batch: int = 4) -> dict[str, float]:
    """Words a second through one training step (forward and backward) and through greedy generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).train()
    enc = tok(texts[:batch], truncation=True, max_length=seq, padding=True, return_tensors="pt",
              add_special_tokens=False) if tok.pad_token is not None else None
    if enc is None:
        tok.pad_token = tok.eos_token
        enc = tok(texts[:batch], truncation=True, max_length=seq, padding=True, return_tensors="pt",
                  add_special_tokens=False)
    words = sum(len(WORD.findall(tok.decode(row[m.bool()]))) for row, m in zip(enc.input_ids, enc.attention_mask))
    model(**enc, labels=enc.input_ids).loss.backward()  # warm-up
    start = time.perf_counter()
    model(**enc, labels=enc.input_ids).loss.backward()
    train = words / (time.perf_counter() - start)
    model.eval()
    prompt = tok(texts[0][:40], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        start = time.perf_counter()
        out = model.generate(**prompt, max_new_tokens=48, min_new_tokens=48, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        seconds = time.perf_counter() - start
    generated = tok.decode(out[0, prompt.input_ids.shape[1]:], skip_special_tokens=True)
    return {"train_words_per_s": round(train, 1),
            "generate_words_per_s": round(len(generated.split()) / seconds, 2),
            "generate_chars_per_s": round(len(generated) / seconds, 1)}


def model_card(base: Path, stats: dict) -> str:
    """The extended model's card: what was asked, what was added, what it changed."""
    short = (f" ({stats['tokens_asked']:,} were asked for: the sampled corpus held no more new Hebrew merges)"
             if stats["tokens_added"] < stats["tokens_asked"] else "")
    return f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [hebrew-lm, hebrew]
---

# {base.name} with a Hebrew vocabulary extension

`hebrew-lm tokenizer extend` added **{stats['tokens_added']:,} Hebrew tokens**{short} to the tokenizer of
`{base}` (new ids {stats['first_new_id']:,} to {stats['vocab_size'] - 1:,}; every existing id unchanged), each new
embedding row starting as the mean of the rows of the pieces that spelled it before. Tokens per Hebrew word
on held-out text: {stats['tokens_per_word_before']} before, {stats['tokens_per_word_after']} after. The model's
license is its base's.
"""


def run(config, force: bool = False) -> Path:
    """Extend `config.base_dir`'s vocabulary with Hebrew into `config.output_dir` and return that folder."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    from hebrew_lm.corpus.shards import load_manifest, read_texts

    c = config
    base, corpus, out = Path(c.base_dir), Path(c.corpus_dir), Path(c.output_dir)
    if not (base / "config.json").is_file() or not (base / "tokenizer.json").is_file():
        raise ValueError(f"tokenizer extend: {base} is not a Hugging Face model folder with a tokenizer.json")
    load_manifest(corpus)
    weights = next((p for p in sorted(base.glob("*.safetensors"))), None)
    fp = fingerprint({"version": FORMAT_VERSION, "add": c.add, "sample_documents": c.sample_documents,
                      "tokenizer": sha256_file(base / "tokenizer.json"),
                      "weights": sha256_file(weights) if weights else str(base),
                      "corpus": read_success(corpus).get("fingerprint"),
                      # only when off: folders that measured keep their fingerprint
                      **({} if c.measure_speed else {"measure_speed": False})})
    if check_finished(out, fp, "extend", force):
        return out
    claim_output_dir(out, "extend")
    clear_owned_dir(out, "extend", "rebuilding the extended model")

    texts = [t for _, t in zip(range(c.sample_documents), read_texts(corpus, "train"))]
    val = [t for _, t in zip(range(200), read_texts(corpus, "validation"))] or texts[:200]
    base_json = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    base_tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    first_id = base_tok.get_vocab_size(with_added_tokens=True)
    merges = learn_hebrew_merges(texts, base_tok.get_vocab(with_added_tokens=True), c.add)
    if not merges:
        raise ValueError(f"{corpus}: no Hebrew merge to add (does its text hold Hebrew letters?)")
    new_tokens = [a + b for a, b in merges]
    if len(new_tokens) < c.add:
        log.warning("tokenizer extend: %d Hebrew tokens asked for, but the %d documents sampled from %s hold only "
                    "%d new Hebrew merges; %d are added", c.add, len(texts), corpus, len(new_tokens), len(new_tokens))
    extended_json = extended_tokenizer_json(base_json, merges, first_id)
    extended_tok = Tokenizer.from_str(json.dumps(extended_json))

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    init_new_rows(model, base_tok, new_tokens, first_id)
    model.save_pretrained(str(out))
    for name in ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if (base / name).is_file() and not (out / name).is_file():
            (out / name).write_bytes((base / name).read_bytes())
    (out / "tokenizer.json").write_text(json.dumps(extended_json, ensure_ascii=False), encoding="utf-8")

    before, after = tokens_per_word(base_tok, val), tokens_per_word(extended_tok, val)
    speed_before, speed_after = (words_per_second(base, val), words_per_second(out, val)) if c.measure_speed \
        else (None, None)
    stats = {"base": str(base), "tokens_asked": c.add, "tokens_added": len(new_tokens), "first_new_id": first_id,
             "vocab_size": first_id + len(new_tokens), "tokens_per_word_before": round(before, 3),
             "tokens_per_word_after": round(after, 3), "speed_before": speed_before, "speed_after": speed_after,
             "examples": [extended_tok.decoder.decode([t]) for t in new_tokens[-10:]]}
    atomic_write_json(out / "extension.json", stats)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "README.md", model_card(base, stats))
    mark_success(out, fp, stage="extend")
    speed = "" if speed_before is None else "; training %.0f -> %.0f words/s, generation %.1f -> %.1f words/s" % (
        speed_before["train_words_per_s"], speed_after["train_words_per_s"], speed_before["generate_words_per_s"],
        speed_after["generate_words_per_s"])
    log.info("tokenizer extend: %d Hebrew tokens added (ids %d-%d); tokens per word %.2f -> %.2f%s -> %s",
             len(new_tokens), first_id, first_id + len(new_tokens) - 1, before, after, speed, out)
    return out
