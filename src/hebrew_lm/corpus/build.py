"""The corpus stage: raw Hebrew text -> clean, deduplicated, shuffled, sharded corpus.

    hebrew-lm corpus build configs/tiny.yaml

Two phases, so that a killed build never leaves a folder that looks finished:
1. scan: read every input in order; normalize, filter and MinHash in worker processes; deduplicate
   in this process (first copy wins); send each kept document to a shuffle bucket chosen by a
   seeded hash of its text, and each dropped one to the rejects file. Ends with `_work/scan.json`.
2. shards: shuffle each bucket in memory with a seeded RNG and write it as shards of its own; then
   `manifest.json`, `stats.json`, `config.yaml` and, last, `_SUCCESS`.
With `tasks >= 1` the same stage runs as a datatrove pipeline instead (`hebrew_lm.corpus.distributed`)
and writes the same bytes.
A rerun after a kill repeats phase 1 from the start if it had not finished (its output depends
only on the config and the inputs, so the result is byte-identical) and otherwise goes on from
phase 2.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import random
import shutil
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hebrew_lm.config import to_dict
from hebrew_lm.corpus.config import CorpusConfig, InputSpec
from hebrew_lm.corpus.dedup import MinHasher, NearDupIndex, exact_digest, lsh_params
from hebrew_lm.corpus.filters import DocumentFilter
from hebrew_lm.records import RawDoc
from hebrew_lm.corpus.readers import ResolvedInput, input_fingerprint, read_input, resolve_inputs
from hebrew_lm.corpus.shards import MB, ShardWriter
from hebrew_lm.runs import (
    atomic_write_json,
    atomic_write_text,
    dump_yaml,
    fingerprint,
    mark_success,
    clear_owned_dir,
    read_success,
)
from hebrew_lm.text.normalize import Normalizer

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 2  # bump when the output of the same config changes (2: each shuffle bucket its own shards)
SPLITS = ("train", "validation")
BATCH_DOCS = 256
BATCH_BYTES = 4 << 20


# --------------------------------------------------------------------------------------------------
# Per-document work, run in worker processes


class DocumentProcessor:
    """normalize -> filter -> exact digest + MinHash signature, for one batch of raw documents."""

    def __init__(self, config: CorpusConfig) -> None:
        self.config = config
        self.normalizer = Normalizer(config.normalize)
        self.filter = DocumentFilter(config)
        self.minhasher = MinHasher(config.minhash_num_perm, config.shingle_words) if config.near_dedup else None

    def clean(self, doc: RawDoc) -> tuple[str, str | None, int]:
        """(text, drop reason or None, boilerplate lines removed); a dropped text is cut to what the
        rejects file keeps."""
        text, reason, removed = doc.text, doc.error, 0
        if reason is None:
            if len(text) <= self.config.max_chars:  # a longer one is dropped by the first filter anyway
                text = self.normalizer(text)
            text, reason, removed = self.filter(text)
        if reason is not None:
            text = text[: self.config.max_reject_chars]
        return text, reason, removed

    def hashes(self, text: str) -> tuple[bytes, Any]:
        """The exact-duplicate digest and the MinHash signature (None without near dedup) of a kept text."""
        return exact_digest(text), self.minhasher.signature(text) if self.minhasher is not None else None

    def __call__(self, batch: list[RawDoc]) -> list[tuple]:
        out = []
        for doc in batch:
            text, reason, removed = self.clean(doc)
            digest, signature = self.hashes(text) if reason is None else (None, None)
            out.append((doc.source, doc.where, doc.nbytes, text, reason, removed, digest, signature))
        return out


_PROCESSOR: DocumentProcessor | None = None


def _init_worker(config: CorpusConfig) -> None:
    global _PROCESSOR
    _PROCESSOR = DocumentProcessor(config)


def _process_in_worker(batch: list[RawDoc]) -> list[tuple]:
    assert _PROCESSOR is not None
    return _PROCESSOR(batch)


def _batches(docs: Iterable[RawDoc]) -> Iterator[list[RawDoc]]:
    batch: list[RawDoc] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += len(doc.text)
        if len(batch) >= BATCH_DOCS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _processed(config: CorpusConfig, batches: Iterator[list[RawDoc]]) -> Iterator[list[tuple]]:
    """Batches through the workers, in input order, with a bounded number in flight."""
    workers = config.num_workers or os.cpu_count() or 1
    if workers == 1:
        processor = DocumentProcessor(config)
        for batch in batches:
            yield processor(batch)
        return
    ctx = mp.get_context("spawn")  # no fork: safe whatever the parent has loaded (threads, torch)
    with ctx.Pool(workers, initializer=_init_worker, initargs=(config,)) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.apply_async(_process_in_worker, (batch,)))
            if len(pending) >= 3 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# --------------------------------------------------------------------------------------------------
# Statistics


class CorpusStats:
    """Counts of documents and input bytes: read, kept, dropped per reason, per source."""

    def __init__(self) -> None:
        self.documents_in = 0
        self.bytes_in = 0
        self.kept_documents = 0
        self.kept_bytes_in = 0
        self.dropped: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.sources: dict[str, dict[str, Any]] = {}
        self.splits = {s: {"documents": 0, "bytes": 0} for s in SPLITS}
        self.boilerplate_lines_removed = 0
        self.decoded_from: dict[str, int] = defaultdict(int)  # documents read from files in another encoding

    def _source(self, name: str) -> dict[str, Any]:
        if name not in self.sources:
            self.sources[name] = {"documents_in": 0, "bytes_in": 0, "kept": 0, "dropped": defaultdict(int)}
        return self.sources[name]

    def read(self, source: str, nbytes: int) -> None:
        self.documents_in += 1
        self.bytes_in += nbytes
        s = self._source(source)
        s["documents_in"] += 1
        s["bytes_in"] += nbytes

    def drop(self, source: str, nbytes: int, reason: str) -> None:
        self.dropped[reason][0] += 1
        self.dropped[reason][1] += nbytes
        self._source(source)["dropped"][reason] += 1

    def keep(self, source: str, nbytes: int, split: str, text_bytes: int) -> None:
        self.kept_documents += 1
        self.kept_bytes_in += nbytes
        self._source(source)["kept"] += 1
        self.splits[split]["documents"] += 1
        self.splits[split]["bytes"] += text_bytes

    def merge(self, other: dict[str, Any]) -> None:
        """Add another build's counts (as `to_dict` wrote them): the distributed path sums its tasks'."""
        self.documents_in += other["documents_in"]
        self.bytes_in += other["bytes_in"]
        self.kept_documents += other["kept"]["documents"]
        self.kept_bytes_in += other["kept"]["bytes_in"]
        for reason, d in other["dropped"].items():
            self.dropped[reason][0] += d["documents"]
            self.dropped[reason][1] += d["bytes_in"]
        for split in SPLITS:
            for key in ("documents", "bytes"):
                self.splits[split][key] += other["splits"][split][key]
        self.boilerplate_lines_removed += other["boilerplate_lines_removed"]
        for encoding, n in other["decoded_from"].items():
            self.decoded_from[encoding] += n
        for name, s in other["sources"].items():
            mine = self._source(name)
            for key in ("documents_in", "bytes_in", "kept"):
                mine[key] += s[key]
            for reason, n in s["dropped"].items():
                mine["dropped"][reason] += n

    def check_invariant(self) -> None:
        """in = kept + every drop, for documents and bytes, overall and per source."""
        dropped_docs = sum(d for d, _ in self.dropped.values())
        dropped_bytes = sum(b for _, b in self.dropped.values())
        assert self.documents_in == self.kept_documents + dropped_docs, (self.documents_in, self.kept_documents, dropped_docs)
        assert self.bytes_in == self.kept_bytes_in + dropped_bytes, (self.bytes_in, self.kept_bytes_in, dropped_bytes)
        for name, s in self.sources.items():
            assert s["documents_in"] == s["kept"] + sum(s["dropped"].values()), name

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents_in": self.documents_in,
            "bytes_in": self.bytes_in,
            "kept": {"documents": self.kept_documents, "bytes_in": self.kept_bytes_in},
            "dropped": {r: {"documents": d, "bytes_in": b} for r, (d, b) in sorted(self.dropped.items())},
            "duplicates": {
                "exact": self.dropped.get("exact_duplicate", [0, 0])[0],
                "near": self.dropped.get("near_duplicate", [0, 0])[0],
            },
            "splits": self.splits,
            "boilerplate_lines_removed": self.boilerplate_lines_removed,
            "decoded_from": dict(sorted(self.decoded_from.items())),
            "sources": {
                name: {**s, "dropped": dict(sorted(s["dropped"].items()))} for name, s in self.sources.items()
            },
        }


# --------------------------------------------------------------------------------------------------
# Phase 1: scan


def reject_line(config: CorpusConfig, source: str, where: str, nbytes: int, text: str, reason: str, **extra: Any) -> str:
    """A dropped document's line in rejects.jsonl.gz: why, from where, and the start of its text."""
    row = {"reason": reason, "source": source, "where": where, "bytes_in": nbytes,
           "text": text[: config.max_reject_chars], **extra}
    return json.dumps(row, ensure_ascii=False) + "\n"


def bucket_line(where: str, source: str, text: str) -> str:
    """A kept document's line in a shuffle bucket (the shards' columns)."""
    return json.dumps({"id": where, "source": source, "text": text}, ensure_ascii=False) + "\n"


def open_rejects(path: Path):
    """rejects.jsonl.gz, written with no timestamp so the same build gives the same bytes, at gzip's
    fastest level: the distributed path merges every task's rejects in one process, and at level 9 the
    compression was most of that job's time."""
    return gzip.GzipFile(path, mode="wb", mtime=0, compresslevel=1)


def _split_and_bucket(digest: bytes, seed: int, validation_fraction: float, num_buckets: int) -> tuple[str, int]:
    h = int.from_bytes(hashlib.blake2b(digest, digest_size=8, key=str(seed).encode()).digest(), "little")
    split = "validation" if (h >> 11) / float(1 << 53) < validation_fraction else "train"
    return split, h % num_buckets


def _scan(config: CorpusConfig, items: list[ResolvedInput], work: Path, num_buckets: int) -> dict[str, Any]:
    stats = CorpusStats()
    seen: set[bytes] = set()
    index = NearDupIndex(config.near_dup_threshold, config.minhash_num_perm) if config.near_dedup else None
    kept_ids: list[str] = []  # by near-dup index ordinal, to name what a near duplicate duplicates
    buckets = {
        (split, b): open(work / f"{split}-{b:05d}.jsonl", "w", encoding="utf-8")
        for split in SPLITS for b in range(num_buckets)
    }
    rejects = open_rejects(work / "rejects.jsonl.gz")

    def reject(source: str, where: str, nbytes: int, text: str, reason: str, **extra: Any) -> None:
        stats.drop(source, nbytes, reason)
        rejects.write(reject_line(config, source, where, nbytes, text, reason, **extra).encode("utf-8"))

    def all_docs() -> Iterator[RawDoc]:
        for item in items:
            for doc in read_input(item, config.max_chars):
                if doc.encoding != "utf-8":
                    stats.decoded_from[doc.encoding] += 1
                yield doc

    total = sum(i.size_estimate for i in items)
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="corpus scan", disable=None, mininterval=1.0)
    try:
        for results in _processed(config, _batches(all_docs())):
            for source, where, nbytes, text, reason, removed, digest, signature in results:
                bar.update(nbytes)
                stats.read(source, nbytes)
                stats.boilerplate_lines_removed += removed
                if reason is not None:
                    reject(source, where, nbytes, text, reason)
                    continue
                if config.exact_dedup:
                    if digest in seen:
                        reject(source, where, nbytes, text, "exact_duplicate")
                        continue
                    seen.add(digest)
                if index is not None:
                    hit = index.add(signature)
                    if hit is not None:
                        reject(source, where, nbytes, text, "near_duplicate", duplicate_of=kept_ids[hit])
                        continue
                    kept_ids.append(where)
                split, b = _split_and_bucket(digest, config.seed, config.validation_fraction, num_buckets)
                buckets[(split, b)].write(bucket_line(where, source, text))
                stats.keep(source, nbytes, split, len(text.encode("utf-8")))
    finally:
        bar.close()
        rejects.close()
        for f in buckets.values():
            f.close()
    stats.check_invariant()
    return stats.to_dict()


# --------------------------------------------------------------------------------------------------
# Phase 2: shuffle and shard


def write_bucket(config: CorpusConfig, out: Path, split: str, bucket: int, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Shuffle one bucket's documents (seeded) into its own shards, `{split}-{bucket:05d}-{k:05d}.{ext}`:
    buckets do not share a shard, so the distributed path writes them in parallel and names them alike."""
    random.Random(f"{config.seed}-{split}-{bucket}").shuffle(rows)
    writer = ShardWriter(out, f"{split}-{bucket:05d}", config.shard_format, int(config.shard_size_mb * MB))
    for row in rows:
        writer.add(row)
    writer.close_shard()
    return writer.shards


def remove_unfinished_shards(out: Path) -> None:
    for old in [*out.glob("*-[0-9][0-9][0-9][0-9][0-9].*"), *out.glob(".*.tmp")]:
        old.unlink()  # shards of an attempt that was killed in this phase


def manifest_of(config: CorpusConfig, shards: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """manifest.json from each split's shards in bucket order."""
    return {"format": config.shard_format, "columns": ["id", "source", "text"], "splits": {
        split: {"documents": sum(s["documents"] for s in shards[split]), "bytes": sum(s["bytes"] for s in shards[split]),
                "shards": shards[split]} for split in SPLITS}}


def _write_shards(config: CorpusConfig, out: Path, work: Path, num_buckets: int) -> dict[str, Any]:
    remove_unfinished_shards(out)
    shards: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    bar = tqdm(total=len(SPLITS) * num_buckets, unit="bucket", desc="corpus shards", disable=None)
    for split in SPLITS:
        for b in range(num_buckets):
            bar.update(1)
            with open(work / f"{split}-{b:05d}.jsonl", encoding="utf-8") as f:
                rows = [json.loads(line) for line in f]
            shards[split] += write_bucket(config, out, split, b, rows)
            del rows
    bar.close()
    return manifest_of(config, shards)


# --------------------------------------------------------------------------------------------------
# The stage


def _plot_stats(stats: dict[str, Any], path: Path) -> None:
    """Bar chart of documents kept and dropped per reason."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    labels = ["kept"] + list(stats["dropped"])
    values = [stats["kept"]["documents"]] + [d["documents"] for d in stats["dropped"].values()]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    colors = ["#2a9d8f"] + ["#e76f51"] * (len(labels) - 1)
    ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("documents")
    ax.set_title(f"corpus: {stats['documents_in']:,} documents read")
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _log_summary(stats: dict[str, Any], out: Path) -> None:
    log.info("corpus: %d documents read, %d kept (train %d, validation %d) -> %s", stats["documents_in"],
             stats["kept"]["documents"], stats["splits"]["train"]["documents"],
             stats["splits"]["validation"]["documents"], out)
    for reason, d in stats["dropped"].items():
        log.info("corpus:   dropped %-20s %8d documents", reason, d["documents"])


def input_specs(config: CorpusConfig) -> list[InputSpec]:
    """The configured inputs, or the embedded default when none are given."""
    from hebrew_lm.embedded.sources import DEFAULT_INPUTS

    return config.inputs or [InputSpec.from_str(p) for p in DEFAULT_INPUTS]


# Where the build runs does not change what it builds: these fields stay out of the fingerprint.
EXECUTOR_FIELDS = ("executor", "tasks", "workers", "executor_options")


def known_inputs(out: Path) -> dict[str, dict] | None:
    """The input record in the `_SUCCESS` of an earlier build in `out`, if any: its hashes spare reading
    files whose size and mtime have not changed."""
    try:
        record = read_success(out).get("inputs")
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def build_plan(config: CorpusConfig) -> tuple[Path, list[ResolvedInput], str, int]:
    """(output folder, resolved inputs, fingerprint, shuffle buckets): what both paths agree on."""
    items = resolve_inputs(input_specs(config))
    settings = {k: v for k, v in to_dict(config).items() if k not in EXECUTOR_FIELDS}
    inputs, _ = input_fingerprint(items, known_inputs(Path(config.output_dir)))
    fp = fingerprint({"version": FORMAT_VERSION, "config": settings, "inputs": inputs})
    num_buckets = max(1, math.ceil(sum(i.size_estimate for i in items) / (config.shuffle_buffer_mb * MB)))
    return Path(config.output_dir), items, fp, num_buckets


def finished_scan(work: Path, fp: str) -> dict[str, Any] | None:
    """The statistics of a scan that finished with this fingerprint, else None."""
    scan_file = work / "scan.json"
    scan = json.loads(scan_file.read_text(encoding="utf-8")) if scan_file.is_file() else None
    return scan["stats"] if scan is not None and scan.get("fingerprint") == fp else None


def check_scan(stats: dict[str, Any], items: list[ResolvedInput], work: Path) -> None:
    if stats["documents_in"] == 0:
        raise ValueError("nothing to read: the inputs hold no documents: " + ", ".join(i.path for i in items))
    if stats["kept"]["documents"] == 0:
        reasons = ", ".join(f"{r}: {d['documents']}" for r, d in stats["dropped"].items())
        raise ValueError(f"every document was dropped ({reasons}); see {work / 'rejects.jsonl.gz'}")


def build_here(config: CorpusConfig, out: Path, items: list[ResolvedInput], fp: str, num_buckets: int) -> None:
    """The build in this process tree: scan (resumed when an earlier one finished), then shards."""
    work = out / "_work"
    started = time.time()
    if finished_scan(work, fp) is not None:
        log.info("corpus: resuming after the finished scan in %s", work)
    else:
        clear_owned_dir(out, "corpus", "an earlier build stopped before its scan finished")
        work.mkdir()
        bands, rows = lsh_params(config.near_dup_threshold, config.minhash_num_perm)
        log.info("corpus: reading %d input(s), %d worker(s), %d shuffle bucket(s), LSH %d bands x %d rows",
                 len(items), config.num_workers or os.cpu_count() or 1, num_buckets, bands, rows)
        stats = _scan(config, items, work, num_buckets)
        check_scan(stats, items, work)
        atomic_write_json(work / "scan.json", {"fingerprint": fp, "stats": stats, "seconds": time.time() - started})
    finish(config, out, fp, num_buckets)


def finish(config: CorpusConfig, out: Path, fp: str, num_buckets: int, manifest: dict[str, Any] | None = None,
           **extra_stats: Any) -> None:
    """Phase 2, after a finished scan (`_work/scan.json` and the buckets): shards (unless the
    distributed path wrote them and passes their `manifest`), manifest, stats, and last `_SUCCESS`."""
    work = out / "_work"
    stats = finished_scan(work, fp)
    assert stats is not None, f"{work} holds no finished scan"
    if manifest is None:
        manifest = _write_shards(config, out, work, num_buckets)
    for split in SPLITS:
        assert manifest["splits"][split]["documents"] == stats["splits"][split]["documents"], split
    if (work / "rejects.jsonl.gz").exists():  # absent only if a kill came after this move
        os.replace(work / "rejects.jsonl.gz", out / "rejects.jsonl.gz")
    stats = {**stats, "rejects_file": "rejects.jsonl.gz", "num_buckets": num_buckets, **extra_stats}
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "config.yaml", dump_yaml(to_dict(config)))
    _plot_stats(stats, out / "stats.png")
    shutil.rmtree(work)
    mark_success(out, fp, stage="corpus", inputs=input_fingerprint(resolve_inputs(input_specs(config)))[1])
    _log_summary(stats, out)
