"""Run folders: atomic writes, the `_SUCCESS` marker, config and stats files, logging.

A finished stage folder holds its artifacts, `config.yaml` (the resolved config), `stats.json`
and `_SUCCESS`, written last. `_SUCCESS` records a fingerprint of the config and the inputs, so a
rerun with the same ones is a no-op and a rerun with other ones is refused until `--force`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("hebrew_lm")

SUCCESS = "_SUCCESS"


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the package logger once: one line per event, to stderr."""
    logger = logging.getLogger("hebrew_lm")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: a crash leaves the old file or none, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def fingerprint(data: Any) -> str:
    """A stable hash of JSON-able data (config plus input fingerprints)."""
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def is_finished(out: Path) -> bool:
    return (Path(out) / SUCCESS).is_file()


def read_success(out: Path) -> dict[str, Any]:
    return json.loads((Path(out) / SUCCESS).read_text(encoding="utf-8"))


def mark_success(out: Path, fp: str, **extra: Any) -> None:
    atomic_write_json(Path(out) / SUCCESS, {"fingerprint": fp, **extra})


def check_finished(out: Path, fp: str, stage: str, force: bool) -> bool:
    """True when `out` already holds this stage finished with fingerprint `fp` (nothing to do).

    A folder finished with another config or other inputs is an error unless `force`, which
    removes it so the stage starts over.
    """
    out = Path(out)
    if not is_finished(out):
        return False
    if force:
        log.info("%s: --force given; removing the finished build at %s", stage, out)
        shutil.rmtree(out)
        return False
    if read_success(out).get("fingerprint") == fp:
        log.info("%s: already finished at %s with the same config and inputs; nothing to do", stage, out)
        return True
    raise ValueError(
        f"{out} holds a finished {stage} build made with another config or other inputs. "
        f"Pass --force to rebuild it, or choose another output_dir."
    )


def prepare_output_dir(out: Path, stage: str, owned_markers: tuple[str, ...]) -> None:
    """Create `out`, refusing to write into a non-empty folder that this stage did not make."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{stage}: output_dir {out} exists and is not a folder")
        entries = [p.name for p in out.iterdir()]
        if entries and not any(m in entries for m in owned_markers):
            raise ValueError(
                f"{stage}: output_dir {out} is not empty and was not made by the {stage} stage; "
                f"refusing to write into it. Choose another output_dir."
            )
    out.mkdir(parents=True, exist_ok=True)


def write_jsonl_gz(path: Path, rows: list[dict[str, Any]]) -> None:
    """Deterministic gzip (mtime 0) of JSON lines, written atomically."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        for row in rows:
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    atomic_write_bytes(path, buf.getvalue())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
