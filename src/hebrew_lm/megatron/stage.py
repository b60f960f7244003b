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
    manifest.json                   every file with its sha256, every prefix with its documents and tokens,
                                    every phase with its steps and blend
    stats.json, config.yaml, _SUCCESS

Blend weights give each phase the Hebrew/anchor split of the CPU path's batches (`anchor_share`), and its
replay share spread over the earlier phases' prefixes by their tokens. Paths in the blends are relative to
the output folder. Launch scripts and checkpoint conversion are not written yet (docs/scale.md).
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

    c = config
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = check_inputs(c)
    anchor_dir = Path(c.anchor_corpus_dir) if c.anchor_corpus_dir else None
    if anchor_dir:
        load_manifest(anchor_dir)
    fp = fingerprint({"version": FORMAT_VERSION, "config": {k: v for k, v in dataclasses.asdict(c).items() if k != "resume"},
                      "corpus": read_success(corpus_dir).get("fingerprint"),
                      "anchor": read_success(anchor_dir).get("fingerprint") if anchor_dir else None,
                      "tokenizer": sha256_file(tokenizer_dir / "tokenizer.json")})
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
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.parent != out)
    manifest = {"format": "megatron-core indexed dataset (MMIDIDX version 1)", "ids_dtype": ids_dtype(vocab_size).name,
                "vocab_size": vocab_size, "bos_id": bos, "tokenizer_dir": str(tokenizer_dir), "prefixes": prefixes,
                "phases": phases, "files": [{"path": str(p.relative_to(out)), "bytes": p.stat().st_size,
                                             "sha256": sha256_file(p)} for p in files]}
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_json(out / "stats.json", {"phases": phases, "prefixes": prefixes})
    atomic_write_text(out / "config.yaml", dump_yaml(dataclasses.asdict(c)))
    mark_success(out, fp, stage="megatron")
    log.info("megatron: %d phase(s), %d prefixes -> %s", len(phases), len(prefixes), out / "manifest.json")
    return out
