"""Run folders: ownership, atomic writes, the `_SUCCESS` marker, config and stats files, logging.

A finished stage folder holds its artifacts, `config.yaml` (the resolved config), `stats.json`
and `_SUCCESS`, written last. `_SUCCESS` records a fingerprint of the config and the inputs, so a
rerun with the same ones is a no-op and a rerun with other ones is refused until `--force`.

The ownership rule (one function, `claim_output_dir`): a stage writes only into a folder that is
new, empty, or holds its own marker `.hebrew-lm-stage` naming that stage, and it deletes only inside
such a folder (`clear_owned_dir`). Anything else is an error naming the folder, and nothing is touched.
Its inputs never lie inside it (`check_inputs_outside`, before anything is cleared).

`--force` never destroys a finished build before its replacement exists: the finished entries move
into OUTPUT/.previous (`set_aside_finished`), the stage builds, and `.previous` is deleted only once
the new `_SUCCESS` is written (`mark_success`). A stage that fails with an error puts the previous
build back (`restore_on_failure`); an interrupted one leaves it in `.previous` until a rerun finishes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("hebrew_lm")

SUCCESS = "_SUCCESS"
OWNER = ".hebrew-lm-stage"
PREVIOUS = ".previous"
"""Inside a stage's folder: its last finished build, kept while `--force` builds the next."""


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the package logger: one line per event, to stderr (the handler once; the level on every
    call, so `-q` in one command of a process does not silence the next)."""
    logger = logging.getLogger("hebrew_lm")
    logger.setLevel(level)
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: a crash leaves the old file or none, never half of one."""
    path = Path(path)
    # An unpredictable name created exclusively (mkstemp: O_EXCL, mode 0600), so nobody can plant a
    # symlink at it beforehand; os.replace then swaps a symlink at `path` itself instead of writing through it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    """`_SUCCESS`, written last; only then is the build that `--force` replaced deleted."""
    atomic_write_json(Path(out) / SUCCESS, {"fingerprint": fp, **extra})
    previous = Path(out) / PREVIOUS
    if previous.is_dir() and not previous.is_symlink():
        shutil.rmtree(previous)


def check_output_path(out: Path, what: str, field: str = "output_dir") -> None:
    """An output folder must be a real folder or not exist yet: never a file, never a symlink (a stage
    that followed one would write, or delete, somewhere the user did not name)."""
    out = Path(out)
    if out.is_symlink():
        raise ValueError(f"{what}: {field} {out} is a symbolic link (to {os.readlink(out)}); "
                         f"give a real folder, e.g. the link's target itself")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{what}: {field} {out} exists and is not a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{what}: {field} {out}: {parent} is a file, not a folder")


def stage_owner(out: Path) -> str | None:
    """The stage that provably made `out`: its `.hebrew-lm-stage` marker, or (folders finished before the
    marker existed) its `_SUCCESS` record naming the stage. None for anything else."""
    out = Path(out)
    for name in (OWNER, SUCCESS):
        path = out / name
        if path.is_file() and not path.is_symlink():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and isinstance(record.get("stage"), str):
                return record["stage"]
    return None


def claim_output_dir(out: Path, stage: str, field: str = "output_dir") -> Path:
    """The one ownership rule: create `out` for `stage`, or accept it when it is empty or holds this
    stage's marker; refuse anything else (a non-empty folder we did not make, another stage's folder)."""
    out = Path(out)
    check_output_path(out, stage, field)
    if out.exists():
        owner = stage_owner(out)
        if owner is not None and owner != stage:
            raise ValueError(f"{stage}: {field} {out} belongs to the {owner} stage; choose another {field}")
        if owner is None and any(out.iterdir()):
            raise ValueError(
                f"{stage}: {field} {out} is not empty and was not made by hebrew-lm's {stage} stage (it has no "
                f"{OWNER} marker); refusing to write into it or delete anything in it. Choose another {field}."
            )
    out.mkdir(parents=True, exist_ok=True)
    if not (out / OWNER).is_file():
        atomic_write_json(out / OWNER, {"stage": stage, "tool": "hebrew-lm"})
    return out


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def clear_owned_dir(out: Path, stage: str, why: str) -> None:
    """Empty a folder that `stage` provably made (see `claim_output_dir`), saying so first. The finished
    build that a `--force` run set aside (`.previous`) stays until the new build finishes."""
    out = claim_output_dir(out, stage)
    entries = [e for e in out.iterdir() if e.name not in (OWNER, PREVIOUS)]
    if entries:
        log.info("%s: %s: removing the %d entries of %s (a folder this stage made)", stage, why, len(entries), out)
    for entry in entries:
        _remove(entry)


def check_inputs_outside(out: Path, inputs: list[tuple[str, Path]], stage: str) -> None:
    """The rule that keeps `--force` from deleting a stage's own input: no input path (a model, a corpus,
    a tokenizer, a data file) may be the output folder or lie inside it. Checked before anything is cleared."""
    root = Path(out).resolve()
    for field_name, path in inputs:
        if Path(path).resolve().is_relative_to(root):
            raise ValueError(f"{stage}: {field_name} {path} lies inside output_dir {out}, which this stage clears "
                             f"and rewrites; copy the input elsewhere or choose another output_dir")


def set_aside_finished(out: Path, stage: str) -> None:
    """`--force` on a finished folder: its entries move into OUTPUT/.previous, kept until the new build's
    `_SUCCESS`."""
    out = claim_output_dir(out, stage)
    previous = out / PREVIOUS
    if previous.is_dir() and not previous.is_symlink():  # stale: its successor finished before it was deleted
        shutil.rmtree(previous)
    entries = [e for e in out.iterdir() if e.name != OWNER]
    log.info("%s: --force given: the finished build in %s moves to %s until the new one finishes", stage, out, previous)
    previous.mkdir()
    for entry in entries:
        os.replace(entry, previous / entry.name)
    fsync_dir(out)


def restore_previous(out: Path, stage: str) -> bool:
    """Put the finished build that `--force` set aside back in place of an unfinished one; True if it did."""
    out = Path(out)
    previous = out / PREVIOUS
    if is_finished(out) or not previous.is_dir() or previous.is_symlink() or stage_owner(out) != stage:
        return False
    for entry in out.iterdir():
        if entry.name not in (OWNER, PREVIOUS):
            _remove(entry)
    for entry in previous.iterdir():
        os.replace(entry, out / entry.name)
    previous.rmdir()
    fsync_dir(out)
    return True


@contextlib.contextmanager
def restore_on_failure(out: Path, stage: str, main: bool = True):
    """Around a stage's run: when it fails with an error, the build that its `--force` set aside comes
    back (the partial new one is dropped). Ctrl-C or a kill leaves both, so a rerun resumes the new one."""
    try:
        yield
    except Exception:
        if main and restore_previous(out, stage):
            log.error("%s: the run failed; the previous finished build is back in %s", stage, out)
        raise


def check_finished(out: Path, fp: str, stage: str, force: bool) -> bool:
    """True when `out` already holds this stage finished with fingerprint `fp` (nothing to do).

    A folder finished with another config or other inputs is an error unless `force`, which
    sets the finished build aside (only when this stage provably made it) so the stage starts over.
    """
    out = Path(out)
    check_output_path(out, stage)
    if not is_finished(out):
        return False
    claim_output_dir(out, stage)  # a finished folder of another stage, or of nobody we know, is refused
    if force:
        set_aside_finished(out, stage)
        return False
    if read_success(out).get("fingerprint") == fp:
        log.info("%s: already finished at %s with the same config and inputs; nothing to do", stage, out)
        return True
    raise ValueError(
        f"{out} holds a finished {stage} build made with another config or other inputs. "
        f"Pass --force to rebuild it, or choose another output_dir."
    )


def safe_component(name: str, what: str) -> str:
    """`name` as one safe path component (a model or task name that becomes a folder): unsafe characters
    become `_`; a name that is empty or only dots afterwards (`..`, `.`) is an error."""
    part = re.sub(r"[^\w.-]+", "_", str(name)).strip("_")
    if not part.strip("."):
        raise ValueError(f"{what} {name!r} cannot name a folder; use letters, digits, '.', '-' or '_'")
    return part


def inside(root: Path, path: Path, what: str) -> Path:
    """`path`, provided that it stays inside `root` with no symlink on the way; else a clear error."""
    root, path = Path(root), Path(path)
    rel = path.relative_to(root) if path.is_relative_to(root) else None
    if rel is None or ".." in rel.parts:
        raise ValueError(f"{what}: {path} is outside {root}")
    node = root
    for part in rel.parts:
        node = node / part
        if node.is_symlink():
            raise ValueError(f"{what}: {node} is a symbolic link; refusing to follow it out of {root}")
    return path


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
