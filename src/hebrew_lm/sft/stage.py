"""The SFT stage: a causal LM fine-tuned on conversations, the loss on the assistant's tokens only, on the
same training engine as pretraining (exact resume, spike recovery, DDP/FSDP under torchrun).

    hebrew-lm sft configs/tiny-decoder.yaml                   # the CPT model on the embedded demo mix
    hebrew-lm sft --init_from my/base --tokenizer_dir my/base --inputs chats.jsonl --output_dir runs/sft
    hebrew-lm chat runs/tiny-decoder/sft/model --prompt "כמה זה 3 ועוד 4?"

The base's tokenizer gets the chat markers (<|im_start|>, <|im_end|>) as special tokens and a ChatML
template with generation markers; the model grows two embedding rows (their mean). Conversations are
encoded with the template, and only the tokens inside the assistant's turns (its content and its
<|im_end|>) carry loss. Each step's batch is split among the sources by their weights; documents are
never packed together (bucketed padding).

Output folder:
    model/                  the chat model: safetensors, tokenizer with the chat template, generation
                            config stopping at <|im_end|>, a card (template, mix, intended use)
    mix.json                every source: conversations, held out, dropped (too long), weight, batch slots
    samples.jsonl           answers of the model to held-out prompts after training
    checkpoints/, metrics.jsonl, curves.png, stats.json, config.yaml, _SUCCESS
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hebrew_lm.sft.config import SftConfig
from hebrew_lm.decoder.data import pad_batch
from hebrew_lm.runs import atomic_write_text, claim_output_dir, fingerprint, sha256_file
from hebrew_lm.sft.data import (CHAT_TEMPLATE, PUBLIC_CHATS, TURN_END, Conversation, chat_template, chat_tokenizer, demo_conversations, encode,
                                is_validation, public_conversations, read_conversations)
from hebrew_lm.engine.stream import WeightedStream, slot_counts

log = logging.getLogger("hebrew_lm")

DEMO = "embedded:sft-demo"
DEMO_VERSION = 1


def load_sources(inputs: list[str], hebrew_corpus_dir: str, english_corpus_dir: str, per_source: int, seed: int,
                 field: str = "sft.inputs") -> dict[str, list[Conversation]]:
    """{source: conversations} from the demo mix (its Hebrew and English from the two corpora) and the
    conversation files, every file checked first."""
    sources: dict[str, list[Conversation]] = {}
    for spec in inputs:
        if spec == DEMO:
            demo = demo_conversations(Path(hebrew_corpus_dir) if hebrew_corpus_dir else None,
                                      Path(english_corpus_dir) if english_corpus_dir else None, per_source, seed)
            for name, conversations in demo.items():
                sources.setdefault(name, []).extend(conversations)
            continue
        kind, path_spec = public_input(spec)
        paths = sorted(glob.glob(path_spec)) if any(ch in path_spec for ch in "*?[") else [path_spec]
        if not paths or not all(Path(p).is_file() for p in paths):
            raise ValueError(f"{field}: {path_spec} not found (a JSONL file of conversations, a glob, "
                             f"FORMAT:PATH with FORMAT one of {', '.join(PUBLIC_CHATS)}, or {DEMO})")
        for path in paths:
            if kind:
                sources.setdefault(kind, []).extend(public_conversations(kind, Path(path), seed))
                continue
            name = Path(path).name.split(".")[0]
            sources.setdefault(name, []).extend(read_conversations(Path(path), name))
    return sources


def public_input(spec: str) -> tuple[str, str]:
    """(format, path) of a `FORMAT:PATH` input naming a public set (PUBLIC_CHATS); ("", spec) otherwise."""
    kind, sep, path = spec.partition(":")
    return (kind, path) if sep and kind in PUBLIC_CHATS else ("", spec)


def inputs_fingerprint(inputs: list[str]) -> str:
    files = sorted(p for spec in inputs if spec != DEMO for path in [public_input(spec)[1]]
                   for p in (glob.glob(path) or [path]))
    return fingerprint({"files": {p: sha256_file(Path(p)) for p in files if Path(p).is_file()},
                        **({"public": 1} if any(public_input(s)[0] for s in inputs) else {}),
                        "demo": DEMO_VERSION if DEMO in inputs else None})


def encode_sources(sources: dict[str, list[Conversation]], tokenizer, c: SftConfig):
    """Token ids and assistant masks per split, with each source's counts (dropped ones with their reason)."""
    splits: dict[str, list[tuple[list[int], list[int], str]]] = {"train": [], "validation": []}
    counts: dict[str, dict[str, Any]] = {}
    for name, conversations in sources.items():
        row = counts[name] = {"conversations": len(conversations), "train": 0, "validation": 0,
                              "dropped": {"too_long": 0}, "supervised_tokens": 0, "tokens": 0}
        for conv in conversations:
            ids, mask = encode(tokenizer, conv)
            if len(ids) > c.max_seq_len:
                row["dropped"]["too_long"] += 1
                continue
            split = "validation" if is_validation(conv, c.validation_fraction) else "train"
            splits[split].append((ids, mask, name))
            row[split] += 1
            row["tokens"] += len(ids)
            row["supervised_tokens"] += sum(mask)
    return splits, counts


def mix_stream(train: list[tuple[list[int], list[int], str]], counts: dict[str, dict[str, Any]], c: SftConfig):
    """The engine's stream over the training conversations: each batch split among the sources by their
    weights (by their sizes when none are given), length-bucketed unless `length_bucketing` is off;
    records each source's weight and slots in `counts`."""
    names = sorted({s for _, _, s in train})
    weights = {w.name: w.weight for w in c.weights}
    unknown = sorted(set(weights) - set(counts))
    if unknown:
        raise ValueError(f"sft.weights: no source named {unknown}; sources: {', '.join(sorted(counts))}")
    share = [weights.get(n, 0.0) if weights else counts[n]["train"] for n in names]
    pools = [np.array([i for i, (_, _, s) in enumerate(train) if s == n]) for n in names]
    lengths = np.array([len(ids) for ids, _, _ in train]) if c.length_bucketing else None
    for n, slots, w in zip(names, slot_counts(share, c.global_batch_size), share):
        counts[n].update({"weight": w, "slots_per_batch": slots})
    return WeightedStream(pools, share, lengths, c.global_batch_size, c.seed), names


def sft_data(c: SftConfig, sources: dict[str, list[Conversation]]):
    """The engine's TrainingData for conversations: weighted per-source batches, (ids, attention, loss mask)."""
    from transformers import AutoTokenizer

    from hebrew_lm.engine.runner import TrainingData
    from hebrew_lm.engine.loop import evaluate_batches, fixed_batch_indices

    def make(cfg, corpus_dir, tokenizer_dir, dist_, pad_id):
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        splits, counts = encode_sources(sources, tokenizer, cfg)
        train, val = splits["train"], splits["validation"]
        if not train:
            raise ValueError(f"sft: no training conversation fits in max_seq_len {cfg.max_seq_len} ({counts})")
        stream, names = mix_stream(train, counts, cfg)
        lengths = np.array([len(ids) for ids, _, _ in train])

        def collate(rows):
            ids, attention = pad_batch([torch.tensor(r[0]) for r in rows], pad_id)
            loss_mask, _ = pad_batch([torch.tensor(r[1]) for r in rows], 0)
            return ids, attention, loss_mask

        def validate(objective, autocast) -> float:
            batches = (collate([val[i] for i in idx])
                       for idx in fixed_batch_indices(len(val), cfg.micro_batch_size, cfg.eval_batches))
            return evaluate_batches(objective, batches, dist_, autocast)

        mix_text = ", ".join(f"{n} {counts[n]['slots_per_batch']}/{cfg.global_batch_size}" for n in names)
        return TrainingData(
            len(train), lambda i: torch.tensor(train[i][0]), lengths, validate if val else None, stream=stream,
            collate=lambda indices: collate([train[i] for i in indices]),
            describe=f"{len(train)} conversations from {len(names)} sources (slots per batch: {mix_text})",
            stats={"sources": counts, "train_conversations": len(train), "validation_conversations": len(val),
                   "supervised_share": round(sum(sum(m) for _, m, _ in train) / max(1, int(lengths.sum())), 4),
                   "sample_prompts": sample_prompts(sources, cfg)})

    return make


def sample_prompts(sources: dict[str, list[Conversation]], c: SftConfig, per_source: int = 2) -> list[dict[str, Any]]:
    """Held-out conversations to show the trained model (two per source): their turns before the last answer."""
    prompts = []
    for name, conversations in sorted(sources.items()):
        held = [conv for conv in conversations if is_validation(conv, c.validation_fraction)][:per_source]
        for conv in held:
            last = max(i for i, t in enumerate(conv.messages) if t["role"] == "assistant")
            prompts.append({"source": name, "messages": conv.messages[:last], "reference": conv.messages[last]["content"]})
    return prompts


def write_samples(model, tokenizer, prompts: list[dict[str, Any]], path: Path) -> None:
    """The model's greedy answers to `prompts`, one JSON line each."""
    rows = []
    model.eval()
    for p in prompts:
        ids = tokenizer.apply_chat_template(p["messages"], add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=48)
        answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        rows.append({**p, "answer": answer})
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def run(config: SftConfig, force: bool = False) -> Path:
    """Fine-tune `config.init_from` on the conversations into `config.output_dir`; return that folder."""
    from hebrew_lm.decoder.stage import causal_lm_stage
    from hebrew_lm.engine.runner import run_training_stage

    c = config
    sources = load_sources(c.inputs, c.hebrew_corpus_dir, c.english_corpus_dir, c.per_source, c.seed)  # bad input stops here
    if not sources:
        raise ValueError("sft.inputs: no conversations")
    # the chat tokenizer lives in the token cache, keyed by the base tokenizer it extends
    claim_output_dir(c.cache_dir, "token cache", "cache_dir")
    base = Path(c.tokenizer_dir)
    if not (base / "tokenizer.json").is_file():
        raise ValueError(f"sft.tokenizer_dir: {base} has no tokenizer.json")
    template = chat_template(base)  # with the base's BOS or not: a chat tokenizer of each kind its own folder
    key = hashlib.sha256((sha256_file(base / "tokenizer.json") + str(DEMO_VERSION)
                          + ("" if template == CHAT_TEMPLATE else template)).encode()).hexdigest()[:16]
    chat_dir = Path(c.cache_dir) / f"chat-tokenizer-{key}"
    if not (chat_dir / "chat_template.jinja").is_file():
        chat_tokenizer(base, chat_dir)
    run_config = dataclasses.replace(c, tokenizer_dir=str(chat_dir))
    stage = causal_lm_stage("sft", sft_data(run_config, sources), export=export_chat_model,
                            inputs=lambda _: {"sft_inputs": inputs_fingerprint(c.inputs)})
    return run_training_stage(run_config, stage, force)


def export_chat_model(model, tokenizer_dir: Path, dest: Path, config: SftConfig, stats: dict[str, Any]) -> Path:
    """The chat model folder: the generation config stops at <|im_end|>; the card says what it is."""
    from transformers import AutoTokenizer

    from hebrew_lm.decoder.export import causal_tokenizer
    from hebrew_lm.engine.export import write_model_folder

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    end = tokenizer.convert_tokens_to_ids(TURN_END)
    model.generation_config.eos_token_id = [end, tokenizer.eos_token_id]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.max_new_tokens = 128
    model.generation_config.do_sample = False
    write_samples(model, tokenizer, stats.get("sample_prompts", []), dest.parent / "samples.jsonl")
    rows = "\n".join(f"| {name} | {s['train']} | {s.get('weight', 0):g} | {s.get('slots_per_batch', 0)} | "
                     f"{s['dropped']['too_long']} |" for name, s in stats["sources"].items())
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "n/a"  # noqa: E731
    card = CARD.format(base=config.init_from, steps=stats["steps"], batch=config.global_batch_size,
                       seq_len=config.max_seq_len, lr=config.learning_rate, rows=rows,
                       demo=" It was trained on hebrew-lm's embedded demo mix, **a demo of the format built from "
                            "package data, not instruction data**: do not use this model as an assistant."
                       if DEMO in config.inputs else "",
                       loss=fmt(stats.get("final_loss")), val_loss=fmt(stats.get("final_val_loss")),
                       params=stats["parameters"], active=stats["active_parameters"])
    return write_model_folder(model, tokenizer_dir, dest, card, edit_tokenizer=causal_tokenizer)


CARD = """---
library_name: transformers
pipeline_tag: text-generation
language: [he, en]
tags: [hebrew-lm, chat, sft]
---
# hebrew-lm chat model (SFT of `{base}`)

A chat model made by supervised fine-tuning of `{base}` with hebrew-lm, {params:,} parameters
({active:,} active per token).{demo}

## Chat template

ChatML: each turn is `<|im_start|>ROLE\\nCONTENT<|im_end|>\\n` (roles system, user, assistant); the
assistant's turn ends with `<|im_end|>`, at which generation stops (`generation_config.json`). The
template is stored with the tokenizer:

```python
from transformers import pipeline
chat = pipeline("text-generation", model="PATH")
print(chat([{{"role": "user", "content": "כמה זה 3 ועוד 4?"}}])[0]["generated_text"][-1]["content"])
```

or `hebrew-lm chat PATH`.

## Training

Loss on the assistant's tokens only (its content and `<|im_end|>`); {steps} steps of {batch}
conversations of at most {seq_len} tokens (longer ones dropped and counted), peak learning rate {lr:g}.
Final training loss {loss}, validation loss {val_loss} (held-out conversations, assistant tokens).

| source | train conversations | weight | slots per batch | dropped (too long) |
|---|---:|---:|---:|---:|
{rows}

## Intended use

Research on Hebrew-English chat models and a worked example of the hebrew-lm pipeline. Few-shot scores,
when the eval stage ran, are in its `model-index/` folder.
"""
