"""What every training stage does around the loop, once: claim its folders, skip a finished run,
tokenize the corpus once, and write the finished folder's stats, config and `_SUCCESS`."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from hebrew_lm.runs import (atomic_write_json, atomic_write_text, check_finished, claim_output_dir, clear_owned_dir,
                            dump_yaml, fingerprint, is_finished, mark_success, read_success, sha256_file)
from hebrew_lm.engine.dist import Dist
from hebrew_lm.engine.metrics import read_metrics

log = logging.getLogger("hebrew_lm")


def check_inputs(c) -> tuple[Path, Path]:
    """The corpus and tokenizer folders, checked, and the token cache claimed, before any work."""
    from hebrew_lm.corpus.shards import load_manifest

    corpus_dir, tokenizer_dir = Path(c.corpus_dir), Path(c.tokenizer_dir)
    claim_output_dir(c.cache_dir, "token cache", "cache_dir")
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise ValueError(f"{tokenizer_dir} has no tokenizer.json; train one with `hebrew-lm tokenizer train`")
    if c.corpus_dir:  # SFT trains on conversations, not a corpus stage: it fingerprints them itself
        load_manifest(corpus_dir)  # a clear error unless the corpus stage finished
    return corpus_dir, tokenizer_dir


def training_fingerprint(c, format_version: int, corpus_dir: Path, tokenizer_dir: Path, dist_: Dist,
                         **inputs: Any) -> str:
    """What a training run's checkpoints and `_SUCCESS` are keyed on: the config (less `resume`), the
    corpus and tokenizer that made its data, the number of processes, and any other `inputs`."""
    return fingerprint({"version": format_version,
                        "config": {k: v for k, v in dataclasses.asdict(c).items() if k != "resume"},
                        "corpus": read_success(corpus_dir).get("fingerprint") if c.corpus_dir else None,
                        "tokenizer": sha256_file(tokenizer_dir / "tokenizer.json"), "world": dist_.world, **inputs})


def begin(c, stage: str, config_fp: str, dist_: Dist, force: bool) -> bool:
    """Prepare OUTPUT for training (rank 0 decides; the others follow); True when it is finished already."""
    out = Path(c.output_dir)
    done = check_finished(out, config_fp, stage, force) if dist_.main else False
    dist_.barrier()
    if done or (not dist_.main and is_finished(out)):
        return True
    if dist_.main:
        claim_output_dir(out, stage)
        from hebrew_lm.engine.checkpoint import written_by_another_config

        if c.resume == "never":
            clear_owned_dir(out, stage, "resume is never")
        elif force and written_by_another_config(out / "checkpoints", config_fp):
            # --force asks for a new build: an unfinished one of another config (a forced run killed before a
            # config change) cannot resume, so it goes; without --force it stays an error (load_checkpoint)
            clear_owned_dir(out, stage, "--force, and its unfinished run's checkpoints are another config's")
        (out / "checkpoints").mkdir(exist_ok=True)
    dist_.barrier()
    return False


def token_stores(corpus_dir: Path, tokenizer_dir: Path, cache_dir: str, dist_: Dist) -> tuple[Path, Path]:
    """The train and validation token stores, tokenized once by rank 0 (the others then find them)."""
    from hebrew_lm.engine.token_store import build_token_store

    if dist_.main:
        for split in ("train", "validation"):
            build_token_store(corpus_dir, tokenizer_dir, split, cache_dir)
    dist_.barrier()
    return (build_token_store(corpus_dir, tokenizer_dir, "train", cache_dir),
            build_token_store(corpus_dir, tokenizer_dir, "validation", cache_dir))


def final_losses(out: Path) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """metrics.jsonl's records, and the last training and validation losses in them."""
    records = read_metrics(out / "metrics.jsonl")
    return records, {
        "final_loss": next((r["loss"] for r in reversed(records) if "loss" in r and "event" not in r), None),
        "final_val_loss": next((r["val_loss"] for r in reversed(records) if "val_loss" in r), None)}


def finish(c, stage: str, config_fp: str, stats: dict[str, Any]) -> None:
    """stats.json, config.yaml, then `_SUCCESS` last."""
    out = Path(c.output_dir)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "config.yaml", dump_yaml(dataclasses.asdict(c)))
    mark_success(out, config_fp, stage=stage)
