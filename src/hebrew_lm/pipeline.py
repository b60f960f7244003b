"""`hebrew-lm run` as a library function: every stage a preset lists, in order, skipping finished ones.

    import hebrew_lm
    folders = hebrew_lm.run("configs/tiny.yaml", until="tokenizer")      # {"corpus": Path, "tokenizer": Path}
    hebrew_lm.run("configs/tiny.yaml", force=["pretrain"], overrides={"pretrain": {"max_steps": 600}})

Under torchrun only the training stages run on every process; the data stages must be finished first,
and the stages after training (evaluation, the report) are left for one process afterwards. Each
stage's wall time goes to RUN_DIR/timings/timings.json, a folder `run` owns.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hebrew_lm.presets import load_preset, stage_config
from hebrew_lm.runs import atomic_write_json, claim_output_dir, is_finished
from hebrew_lm.stages import STAGE_CONFIGS, stage_of

log = logging.getLogger("hebrew_lm")

TIMINGS = Path("timings") / "timings.json"
"""Where `run` records each stage's wall time: a folder of its own under RUN_DIR, never a file it did not write."""


def selected_stages(stages: list[str], first: str | None, last: str | None) -> list[str]:
    """The preset's stages from `first` to `last`, both included."""
    for name, flag in ((first, "--from"), (last, "--until")):
        if name is not None and name not in stages:
            raise ValueError(f"{flag} {name}: this preset's stages are {', '.join(stages)}")
    start = stages.index(first) if first else 0
    end = stages.index(last) + 1 if last else len(stages)
    if start >= end:
        raise ValueError(f"--from {first} comes after --until {last}")
    return stages[start:end]


def record_timing(path: Path, stage: str, seconds: float) -> None:
    """Wall time of each stage's last real run, for the report."""
    try:
        timings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        timings = None
    if not isinstance(timings, dict):
        log.warning("%s was not a mapping of stage to seconds; starting it over", path)
        timings = {}
    timings[stage] = round(seconds, 1)
    order = list(STAGE_CONFIGS)
    atomic_write_json(path, {k: timings[k] for k in sorted(timings, key=lambda k: order.index(k) if k in order else 99)})


def run(config_path: str | Path, *, start: str | None = None, until: str | None = None, force: Iterable[str] = (),
        overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """Run the preset's stages from `start` to `until` (names from its `stages`), rebuilding those in `force`,
    each with its `overrides` ({stage: {field: value}}); returns each stage's output folder."""
    config_path, force, overrides = str(config_path), set(force), overrides or {}
    preset = load_preset(config_path)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    stages = selected_stages(preset["stages"], start, until)
    if force - set(preset["stages"]):
        raise ValueError(f"--force {' '.join(sorted(force - set(preset['stages'])))}: this preset's "
                         f"stages are {', '.join(preset['stages'])}")
    timings = None
    if preset.get("run_dir") and rank == 0:
        timings = claim_output_dir(Path(preset["run_dir"]) / TIMINGS.parent, "run", "the timings folder") / TIMINGS.name
    first_distributed = next((i for i, s in enumerate(stages) if stage_of(preset, s).distributed), len(stages))
    folders: dict[str, Path] = {}
    for i, stage in enumerate(stages):
        config = stage_config(preset, stage, overrides.get(stage), source=config_path)
        distributed = stage_of(preset, stage).distributed
        if world > 1 and not distributed and i > first_distributed:
            # Evaluation and the report run in one process after training, not once per process.
            if rank == 0:
                log.info("%s: not under torchrun; when training is done, run `hebrew-lm run %s --from %s`",
                         stage, config_path, stage)
            break
        if world > 1 and not distributed:
            # Under torchrun only the training stages run on every process; the data stages must be
            # finished already, or every process would build them into one folder at once.
            if not is_finished(config.output_dir):
                first = [f"hebrew-lm {stage_of(preset, s).command} {config_path}"
                         for s in preset["stages"] if not stage_of(preset, s).distributed]
                raise ValueError(f"under torchrun the {stage} stage must be finished first; run the data stages in one "
                                 f"process ({'; '.join(first)}), then launch torchrun again")
            if rank != 0:
                continue
        marker = Path(config.output_dir) / "_SUCCESS"
        before = marker.stat().st_mtime_ns if marker.is_file() else None
        started = time.time()
        folders[stage] = stage_of(preset, stage).run(config, force=stage in force)
        if timings and marker.is_file() and marker.stat().st_mtime_ns != before:
            record_timing(timings, stage, time.time() - started)
    return folders
