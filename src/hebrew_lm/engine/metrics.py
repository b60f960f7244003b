"""metrics.jsonl: one JSON record per logged step, validation and event, appended as training goes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hebrew_lm.runs import atomic_write_text

log = logging.getLogger("hebrew_lm")


def metrics_writer(path: Path, up_to_step: int):
    """Append to metrics.jsonl, first dropping records past `up_to_step` (a killed run's tail that
    will be recomputed)."""
    if path.exists():
        kept = [line for line, record in read_metrics(path, with_lines=True) if record["step"] <= up_to_step]
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return open(path, "a", encoding="utf-8")


def read_metrics(path: Path, with_lines: bool = False) -> list:
    """The records of metrics.jsonl. A torn last line (a kill mid-write) is dropped with a warning: it lies
    past the last checkpoint and is recomputed anyway. A bad line elsewhere is an error naming it."""
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a metrics record")
        except ValueError as e:
            if all(not rest.strip() for rest in lines[n:]):
                log.warning("train: %s:%d: torn last line dropped (a run killed mid-write): %r", path, n, line[:60])
                break
            raise ValueError(f"{path}:{n}: not a metrics record ({e}); fix or remove that line") from None
        out.append((line, record) if with_lines else record)
    return out
