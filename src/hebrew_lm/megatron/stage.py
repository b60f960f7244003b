"""The Megatron-Bridge handoff: a cpt config's curriculum written as Megatron indexed datasets and one blend
per phase, the data of the runs Hebatron's recipe needs at its real scale (each phase its own run, since a
Megatron blend is fixed for the life of a run).

    hebrew-lm megatron configs/tiny-decoder.yaml      # the tiny preset's cpt data, per phase
    hebrew-lm plan configs/hebatron.yaml              # the runs, with their steps and blends (plan.megatron_plan)

Output folder:
    data/hebrew-PHASE.{bin,idx}     the training documents each phase picks (sources, difficulty quantiles),
                                    tokenized with the stage's tokenizer, the base's BOS first when it opens
                                    texts with one, its end-of-sequence token after every document
    data/anchor.{bin,idx}           the anchor corpus's training documents
    data/*-validation.{bin,idx}     the held-out documents of both
    blends/PHASE.json               the phase's blend per split (`{"train": [w, prefix, ...], "valid": [...]}`)
    blends/PHASE.txt                the same train blend flattened (`w prefix w prefix`, Megatron's --data-path)
    tokenizer/                      the stage's tokenizer with the chat markers and template (one vocabulary
                                    from the import to SFT)
    base/                           only when the markers are new tokens: the base with rows for them
    sft/{training,validation}.jsonl the SFT conversations in Hugging Face's chat format
    scripts/                        00-import.sh, one NN-PHASE.sh a phase in order, NN-sft.sh, export.sh
                                    (hebrew_lm.megatron.launch), and RUN.md how to run them
    manifest.json                   every file with its sha256, every prefix with its documents and tokens,
                                    every phase with its steps and blend
    stats.json, config.yaml, _SUCCESS

Blend weights give each phase the Hebrew/anchor split of the CPU path's batches (`anchor_share`, a share of
tokens in both), and its replay share spread over the earlier phases' prefixes by their tokens. Paths in the blends are relative to
the output folder; the scripts make them absolute.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hebrew_lm.megatron.config import MegatronConfig
from hebrew_lm.megatron.indexed import ids_dtype, write_indexed_dataset
from hebrew_lm.runs import (atomic_write_json, atomic_write_text, check_finished, claim_output_dir, clear_owned_dir,
                            dump_yaml, fingerprint, mark_success, read_success, safe_component, sha256_file)

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


def documents_of(store: Path, bos: int | None) -> list[np.ndarray]:
    """Each document of a token store as the CPU path reads it: its ids and end token, BOS first if given."""
    from hebrew_lm.engine.token_store import load_tokens

    tokens = np.asarray(load_tokens(store))
    eos = json.loads((store / "meta.json").read_text(encoding="utf-8"))["eos_id"]
    ends = np.flatnonzero(tokens == eos) + 1
    docs = np.split(tokens, ends[:-1]) if len(ends) else []
    return [np.concatenate([[bos], d]) if bos is not None else d for d in docs]


def anchor_share(c, i: int) -> float:
    """Phase i's anchor share, as the CPU path mixes it (none without an anchor corpus)."""
    return c.resolved_anchor_share(c.phases[i]) if c.anchor_corpus_dir else 0.0


def phase_weights(c, order: list[int], tokens: dict[str, int], names: list[str]) -> list[list[tuple[float, str]]]:
    """Each phase's train blend in run order: (weight, prefix) pairs summing to 1."""
    blends = []
    for n, i in enumerate(order):
        spec = c.phases[i]
        anchor = anchor_share(c, i)
        replay = spec.replay_share if n else 0.0
        blend = [(1.0 - anchor - replay, f"data/hebrew-{names[i]}")]
        earlier = [f"data/hebrew-{names[j]}" for j in order[:n]]
        total = sum(tokens[p] for p in earlier)
        blend += [(replay * tokens[p] / total, p) for p in earlier] if replay and total else []
        blend += [(anchor, "data/anchor")] if anchor else []
        blends.append([(round(w, 6), p) for w, p in blend if w > 0])
    return blends


def run(config: MegatronConfig, force: bool = False) -> Path:
    """Write the curriculum's Megatron data, blends and manifest into `config.output_dir`; return that folder."""
    from hebrew_lm.corpus.shards import load_manifest
    from hebrew_lm.cpt.difficulty import base_loss_scores, difficulty_scores
    from hebrew_lm.cpt.mixture import allocate_steps, phase_order, select_documents
    from hebrew_lm.decoder.data import base_bos
    from hebrew_lm.engine.dist import Dist
    from hebrew_lm.engine.folder import check_inputs, token_stores
    from hebrew_lm.megatron.launch import check_recipe
    from hebrew_lm.sft.stage import inputs_fingerprint

    c = config
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = check_inputs(c)
    check_recipe(c)
    anchor_dir = Path(c.anchor_corpus_dir) if c.anchor_corpus_dir else None
    if anchor_dir:
        load_manifest(anchor_dir)
    fp = fingerprint({"version": FORMAT_VERSION, "config": {k: v for k, v in dataclasses.asdict(c).items() if k != "resume"},
                      "corpus": read_success(corpus_dir).get("fingerprint"),
                      "anchor": read_success(anchor_dir).get("fingerprint") if anchor_dir else None,
                      "tokenizer": sha256_file(tokenizer_dir / "tokenizer.json"),
                      "sft_inputs": inputs_fingerprint(c.sft_inputs)})
    if check_finished(out, fp, "megatron", force):
        return out
    claim_output_dir(out, "megatron")
    clear_owned_dir(out, "megatron", "writing the handoff again")
    dist_ = Dist()
    train_store, val_store = token_stores(corpus_dir, tokenizer_dir, c.cache_dir, dist_)
    vocab_size = json.loads((train_store / "meta.json").read_text(encoding="utf-8"))["vocab_size"]
    bos = base_bos(tokenizer_dir)
    hebrew, hebrew_val = documents_of(train_store, bos), documents_of(val_store, bos)
    scores = difficulty_scores(corpus_dir, "train", c.cache_dir)
    if any(p.difficulty == "base_loss" for p in c.phases):
        scores["base_loss"] = base_loss_scores(train_store, c.init_from, c.cache_dir, len(scores["source"]), c.max_seq_len)
    names = [safe_component(p.name, "megatron: phase name") for p in c.phases]
    (out / "data").mkdir()
    prefixes: dict[str, dict[str, Any]] = {}
    for spec, name in zip(c.phases, names):
        picked = np.flatnonzero(select_documents(spec, scores))
        if not len(picked):
            raise ValueError(f"megatron: phase {spec.name!r} selects no document of {corpus_dir}")
        prefixes[f"data/hebrew-{name}"] = write_indexed_dataset(out / "data" / f"hebrew-{name}",
                                                                (hebrew[d] for d in picked), vocab_size)
    prefixes["data/hebrew-validation"] = write_indexed_dataset(out / "data" / "hebrew-validation", hebrew_val,
                                                               vocab_size)
    if anchor_dir:
        a_train, a_val = token_stores(anchor_dir, tokenizer_dir, c.cache_dir, dist_)
        prefixes["data/anchor"] = write_indexed_dataset(out / "data" / "anchor", documents_of(a_train, bos), vocab_size)
        prefixes["data/anchor-validation"] = write_indexed_dataset(out / "data" / "anchor-validation",
                                                                   documents_of(a_val, bos), vocab_size)
    order = phase_order(c)
    steps = allocate_steps(c.max_steps, [p.share for p in c.phases])
    tokens = {p: v["tokens"] for p, v in prefixes.items()}
    (out / "blends").mkdir()
    phases = []
    for (n, i), blend in zip(enumerate(order), phase_weights(c, order, tokens, names)):
        anchor = anchor_share(c, i)
        valid = [(1.0 - anchor, "data/hebrew-validation")] + ([(anchor, "data/anchor-validation")] if anchor else [])
        flat = lambda pairs: [x for w, p in pairs for x in (f"{w:g}", p)]  # noqa: E731
        atomic_write_json(out / "blends" / f"{names[i]}.json", {"train": flat(blend), "valid": flat(valid), "test": []})
        atomic_write_text(out / "blends" / f"{names[i]}.txt", " ".join(flat(blend)) + "\n")
        phases.append({"phase": c.phases[i].name, "run": n + 1, "steps": steps[i], "train_blend": blend,
                       "valid_blend": valid, "anchor_share": anchor,
                       "tokens_per_step": c.global_batch_size * c.max_seq_len,
                       "documents": prefixes[f"data/hebrew-{names[i]}"]["documents"]})
    base = write_tokenizer_and_base(out, c, tokenizer_dir)
    sft = write_sft_data(out, c, corpus_dir, anchor_dir) if c.sft_inputs else None
    write_scripts(out, c, phases, names, order, base, sft)
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.parent != out)
    manifest = {"format": "megatron-core indexed dataset (MMIDIDX version 1)", "ids_dtype": ids_dtype(vocab_size).name,
                "vocab_size": vocab_size, "bos_id": bos, "tokenizer_dir": str(tokenizer_dir), "prefixes": prefixes,
                "phases": phases, "files": [{"path": str(p.relative_to(out)), "bytes": p.stat().st_size,
                                             "sha256": sha256_file(p)} for p in files]}
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_json(out / "stats.json", {"phases": phases, "prefixes": prefixes, "base": base, "sft": sft})
    atomic_write_text(out / "config.yaml", dump_yaml(dataclasses.asdict(c)))
    mark_success(out, fp, stage="megatron")
    log.info("megatron: %d phase(s), %d prefixes -> %s", len(phases), len(prefixes), out / "manifest.json")
    return out


def write_tokenizer_and_base(out: Path, c: MegatronConfig, tokenizer_dir: Path) -> str:
    """tokenizer/: the stage's tokenizer with the chat markers and template, one vocabulary from the import to
    SFT. When the markers are new tokens, base/ is the base with their rows set as the sft stage sets them
    (grow_embeddings) and is what 00-import.sh imports; returns the base the scripts import ("$here/base" or
    init_from)."""
    from transformers import AutoTokenizer

    from hebrew_lm.sft.data import chat_tokenizer

    chat_tokenizer(tokenizer_dir, out / "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    tokens, base_tokens = len(tokenizer), len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    if tokens == base_tokens:
        return f'"{Path(c.init_from).resolve()}"'
    import torch
    from transformers import AutoModelForCausalLM

    from hebrew_lm.sft.config import SftConfig
    from hebrew_lm.tokenizer.extend import grow_embeddings

    log.info("megatron: the chat markers are new tokens: writing the base with their rows to %s", out / "base")
    model = AutoModelForCausalLM.from_pretrained(c.init_from, dtype=torch.bfloat16 if c.precision == "bf16" else torch.float32)
    grow_embeddings(model, tokenizer, SftConfig.NEW_ROWS_LIKE, base_tokens)
    model.save_pretrained(out / "base")
    tokenizer.save_pretrained(out / "base")
    return '"$here/base"'


def write_sft_data(out: Path, c: MegatronConfig, corpus_dir: Path, anchor_dir: Path | None) -> dict[str, Any]:
    """sft/training.jsonl and sft/validation.jsonl: the conversations in Hugging Face's chat format (`messages`),
    which Megatron-Bridge's chat SFT reads with the tokenizer's template; split as the sft stage splits them."""
    from hebrew_lm.sft.data import is_validation
    from hebrew_lm.sft.stage import load_sources

    sources = load_sources(c.sft_inputs, str(corpus_dir), str(anchor_dir or ""), 600, c.seed, "megatron.sft_inputs")
    rows: dict[str, list[str]] = {"training": [], "validation": []}
    for conversations in sources.values():
        for conv in conversations:
            split = "validation" if is_validation(conv, 0.05) else "training"
            rows[split].append(json.dumps({"messages": conv.messages}, ensure_ascii=False))
    (out / "sft").mkdir()
    for split, lines in rows.items():
        atomic_write_text(out / "sft" / f"{split}.jsonl", "".join(line + "\n" for line in lines))
    return {"sources": {name: len(v) for name, v in sources.items()}, **{split: len(v) for split, v in rows.items()}}


def write_scripts(out: Path, c: MegatronConfig, phases: list[dict], names: list[str], order: list[int], base: str,
                  sft: dict[str, Any] | None) -> None:
    """scripts/: import, one run per phase in order, SFT, export; RUN.md says how to run them."""
    from hebrew_lm.megatron.launch import export_script, import_script, phase_script, sft_script, shared_overrides

    (out / "scripts").mkdir()
    scripts = {"00-import.sh": import_script(base)}
    shared = shared_overrides(c)
    previous, start = "base", 0
    for n, (phase, i) in enumerate(zip(phases, order), start=1):
        end = start + phase["steps"]
        scripts[f"{n:02d}-{names[i]}.sh"] = phase_script(c, n, names[i], start, end, phase["train_blend"],
                                                         phase["valid_blend"], previous, base, shared)
        previous, start = names[i], end
    if sft:
        scripts[f"{len(phases) + 1:02d}-sft.sh"] = sft_script(c, len(phases) + 1, previous, base, shared)
    scripts["export.sh"] = export_script(base)
    for name, text in scripts.items():
        atomic_write_text(out / "scripts" / name, text)
        (out / "scripts" / name).chmod(0o755)
    runs = [n for n in scripts if n[0].isdigit()]
    exported = [names[i] for i in order] + (["sft"] if sft else [])
    atomic_write_text(out / "RUN.md", RUN_MD.format(
        runs="\n".join(f"bash scripts/{n}" for n in runs), exports="\n".join(f"bash scripts/export.sh {r}" for r in exported),
        models=" ".join(f"$here/hf/{r}" for r in exported), names=" ".join(exported)))


RUN_MD = """# Running this curriculum on Megatron-Bridge

Written by `hebrew-lm megatron`; not run where it was written (docs/scale.md says what was).
In NVIDIA's NeMo container, with a Megatron-Bridge checkout at the pinned commit:

```bash
export MEGATRON_BRIDGE=/opt/Megatron-Bridge      # git checkout the commit each script names
export CHECKPOINTS=/lustre/you/checkpoints       # default: checkpoints/ beside this file
{runs}
```

Each phase is its own run (a blend is fixed for a run's life), from the weights of the run before;
multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT as your launcher does. Then, for evaluation
back on `hebrew-lm` (any machine):

```bash
{exports}
here=$PWD; hebrew-lm eval --models {models} --model_names {names} --output_dir runs/megatron-eval
```
"""
