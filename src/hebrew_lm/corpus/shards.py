"""Corpus shards: writing them (the corpus stage) and reading them back (every later stage).

    for text in read_texts("runs/tiny/corpus", "validation"): ...
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hebrew_lm.runs import is_finished, sha256_file

MB = 1 << 20


def load_manifest(corpus_dir: str | Path) -> dict[str, Any]:
    """The manifest of a finished corpus stage; anything else is a clear error."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(f"corpus folder not found: {corpus_dir}; build it with `hebrew-lm corpus build`")
    if not is_finished(corpus_dir) or not (corpus_dir / "manifest.json").is_file():
        raise ValueError(
            f"{corpus_dir} is not a finished corpus stage (no _SUCCESS or manifest.json); "
            f"build it with `hebrew-lm corpus build` first"
        )
    return json.loads((corpus_dir / "manifest.json").read_text(encoding="utf-8"))


def read_texts(corpus_dir: str | Path, split: str, shard_order_seed: int | None = None) -> Iterator[str]:
    """Stream the documents of one split, shard by shard (in a seeded order when a seed is given)."""
    for (text,) in read_records(corpus_dir, split, ("text",), shard_order_seed):
        yield text


def read_records(corpus_dir: str | Path, split: str, columns: tuple[str, ...] = ("id", "source", "text"),
                 shard_order_seed: int | None = None) -> Iterator[tuple]:
    """Stream `columns` of each document of one split (id: where it came from, e.g. `scriptures/bible.json:Ruth 1`)."""
    import pyarrow.parquet as pq

    manifest = load_manifest(corpus_dir)
    shards = [s["file"] for s in manifest["splits"].get(split, {}).get("shards", [])]
    if shard_order_seed is not None:
        random.Random(shard_order_seed).shuffle(shards)
    for name in shards:
        path = Path(corpus_dir) / name
        if name.endswith(".parquet"):
            for batch in pq.ParquetFile(path).iter_batches(columns=list(columns), batch_size=1024):
                yield from zip(*(batch.column(i).to_pylist() for i in range(len(columns))))
        else:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    yield tuple(row[c] for c in columns)


class ShardWriter:
    """Streams documents into `{split}-{index:05d}.{ext}` shards of about `shard_bytes` of text each.

    Rows go out in groups of ~ROW_GROUP_BYTES, so memory stays small whatever the shard size; each
    shard is written under a temporary name, fsynced and renamed, so a kill never leaves half a shard.
    """

    ROW_GROUP_BYTES = 32 * MB
    COLUMNS = ("id", "source", "text")

    def __init__(self, out: Path, split: str, fmt: str, shard_bytes: int) -> None:
        self.out, self.split, self.fmt, self.shard_bytes = out, split, fmt, shard_bytes
        self.ext = "parquet" if fmt == "parquet" else "jsonl.gz"
        self.shards: list[dict[str, Any]] = []
        self.rows: list[dict[str, str]] = []
        self.pending = 0  # text bytes in self.rows
        self.size = 0  # text bytes in the open shard
        self.count = 0  # documents in the open shard
        self.writer: Any = None
        self.raw: Any = None

    @property
    def path(self) -> Path:
        return self.out / f"{self.split}-{len(self.shards):05d}.{self.ext}"

    @property
    def tmp(self) -> Path:
        return self.path.with_name(f".{self.path.name}.tmp")

    def add(self, row: dict[str, str]) -> None:
        nbytes = len(row["text"].encode("utf-8"))
        self.rows.append(row)
        self.pending += nbytes
        self.size += nbytes
        self.count += 1
        if self.size >= self.shard_bytes:
            self.close_shard()
        elif self.pending >= self.ROW_GROUP_BYTES:
            self._write_rows()

    def _write_rows(self) -> None:
        if not self.rows:
            return
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({k: [r[k] for r in self.rows] for k in self.COLUMNS})
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
            self.writer.write_table(table)
        else:
            if self.writer is None:
                self.raw = open(self.tmp, "wb")
                self.writer = gzip.GzipFile(filename="", fileobj=self.raw, mode="wb", mtime=0)
            for r in self.rows:
                self.writer.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
        self.rows, self.pending = [], 0

    def close_shard(self) -> None:
        self._write_rows()
        if self.writer is None:
            return
        self.writer.close()
        if self.raw is not None:
            self.raw.close()
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        path = self.path
        os.replace(self.tmp, path)
        self.shards.append({"file": path.name, "documents": self.count, "bytes": self.size, "sha256": sha256_file(path)})
        self.writer = self.raw = None
        self.size = self.count = 0
