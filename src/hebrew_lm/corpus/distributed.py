"""The corpus stage as a datatrove pipeline: the same corpus as the single-machine path, on datatrove's
local, Slurm or Ray executor.

    hebrew-lm corpus build configs/tiny.yaml --tasks 2                       # 2 local processes
    hebrew-lm corpus build my.yaml --executor slurm --tasks 64 \\
        --executor_options '{partition: cpu, time: "04:00:00", mem_per_cpu_gb: 4}'

Six datatrove jobs, each one executor, chained with `depends` (Slurm submits them all at once):

1. process (N tasks): our readers, Hebrew normalization and quality filters as pipeline steps over
   the input files given to this task; each document gets an ordinal, (input index, line index), the
   order the single-machine path reads in. Writes the documents with their drop reason, and for kept
   ones the exact digest (partitioned by digest) and the MinHash LSH band keys (partitioned by band
   and key range), appended chunk by chunk.
2. buckets (N tasks): each task owns some digest partitions and some band partitions: sorts them and
   writes the exact duplicates (every copy after the first) and the groups of documents sharing a
   band key. No task holds more than its partitions.
3. clusters (1 task): decides near duplicates over the groups only (documents without a shared band
   key never reach it), in ordinal order, with the single-machine rule: a document is a near
   duplicate when it shares a band key with an earlier *kept* document (the earliest one is named).
4. filter (N tasks): each task's documents again, now kept (to a shuffle bucket), or rejected with
   their reason; per-task counts.
5. shards (N tasks): each shuffle bucket, its parts merged into read order, shuffled and written as
   its own shards (`hebrew_lm.corpus.build.write_bucket`, as the single-machine path does).
6. finish (1 task): the counts and the rejects (in read order) merged, then the manifest, stats and
   `_SUCCESS` of `hebrew_lm.corpus.build.finish`: the same bytes as the one-machine run.

Resume: datatrove's completion markers (`OUTPUT/datatrove/<job>/completions/`) skip finished tasks;
a task rewrites every file it owns from the start, so a killed one leaves nothing half-valid behind.
Why not datatrove's own MinHash blocks: docs/decisions.md.
"""

from __future__ import annotations

import dataclasses
import gzip
import heapq
import json
import logging
import os
import resource
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    from datatrove.data import Document
    from datatrove.pipeline.base import PipelineStep
except ImportError:  # pragma: no cover - datatrove is a dependency; a broken install gets a clear message
    raise ValueError("corpus.tasks >= 1 runs the corpus stage on datatrove, which is not installed: "
                     "pip install 'datatrove>=0.10,<0.11'") from None

from hebrew_lm.corpus.config import CorpusConfig
from hebrew_lm.corpus.build import (
    SPLITS,
    CorpusStats,
    DocumentProcessor,
    _split_and_bucket,
    bucket_line,
    check_scan,
    finish,
    manifest_of,
    open_rejects,
    reject_line,
    write_bucket,
)
from hebrew_lm.corpus.dedup import NearDupIndex, lsh_params
from hebrew_lm.corpus.readers import ResolvedInput, read_input
from hebrew_lm.records import RawDoc
from hebrew_lm.runs import atomic_write_json, clear_owned_dir, fingerprint

log = logging.getLogger("hebrew_lm")

JOBS = ("process", "buckets", "clusters", "filter", "shards", "finish")
ITEM_SHIFT = 40  # ordinal = input index << 40 | document index: read order, and 10^12 documents an input


def ordinal(item: int, doc: int) -> int:
    return item << ITEM_SHIFT | doc


@dataclass
class Build:
    """What every task of one build needs; pickled to the workers by the executor."""

    config: CorpusConfig
    items: list[ResolvedInput]
    fp: str
    num_buckets: int
    tasks: int
    band_parts: int  # each band's keys are split into this many partitions

    @property
    def out(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def work(self) -> Path:
        return self.out / "_work"

    def owner(self, ordinal_: int) -> int:
        """The task that reads (and filters) a document: input files are dealt out round robin."""
        return (ordinal_ >> ITEM_SHIFT) % self.tasks

    def units(self, rank: int, total: int) -> list[int]:
        return list(range(rank, total, self.tasks))


def _bands(config: CorpusConfig) -> int:
    return lsh_params(config.near_dup_threshold, config.minhash_num_perm)[0] if config.near_dedup else 0


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        array.astype(np.uint64).tofile(f)


def _load_all(folder: Path, columns: int) -> np.ndarray:
    """The rows of every raw uint64 file in `folder` (none: no rows)."""
    parts = [np.fromfile(p, dtype=np.uint64) for p in sorted(folder.glob("*.bin"))]
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)).reshape(-1, columns)


def _peak_rss(build: Build, job: str, rank: int) -> None:
    """The task's peak resident memory, for stats.json (`executor.peak_rss_mb`)."""
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    atomic_write_json(build.work / "rss" / f"{job}-{rank:05d}.json", {"job": job, "rank": rank, "peak_rss_mb": round(rss_mb, 1)})


# --------------------------------------------------------------------------------------------------
# The steps of the process job, and one step for each later job


class ReadInputs(PipelineStep):
    """Our readers (every input format, encodings, file:line) as a datatrove reader of this task's files."""

    name, type = "hebrew-lm inputs", "📖 - READER"

    def __init__(self, build: Build) -> None:
        super().__init__()
        self.build = build

    def run(self, data=None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for i, item in enumerate(self.build.items):
            if i % world_size != rank:
                continue
            for j, doc in enumerate(read_input(item, self.build.config.max_chars)):
                self.stat_update("documents")
                yield Document(text=doc.text, id=doc.where, metadata={
                    "ordinal": ordinal(i, j), "source": doc.source, "nbytes": doc.nbytes,
                    "error": doc.error, "encoding": doc.encoding})


class CleanHebrew(PipelineStep):
    """Hebrew normalization and the quality filters. A dropped document stays in the stream with its
    reason, so that the rejects file and the counts see it."""

    name, type = "hebrew-lm normalize + filters", "🔻 - FILTER"

    def __init__(self, build: Build) -> None:
        super().__init__()
        self.build = build

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        processor = DocumentProcessor(self.build.config)
        for doc in data:
            m = doc.metadata
            raw = RawDoc(doc.text, m["source"], doc.id, m["nbytes"], m["error"], m["encoding"])
            doc.text, m["reason"], m["removed"] = processor.clean(raw)
            self.stat_update(m["reason"] or "kept")
            yield doc


class WriteSignatures(PipelineStep):
    """The dedup keys of the kept documents, partitioned for the buckets job, and every document (with
    its reason) for the filter job."""

    name, type = "hebrew-lm dedup signatures", "🫂 - DEDUP"

    def __init__(self, build: Build) -> None:
        super().__init__()
        self.build = build

    def run(self, data, rank: int = 0, world_size: int = 1) -> None:
        b = self.build
        processor = DocumentProcessor(b.config)
        index = NearDupIndex(b.config.near_dup_threshold, b.config.minhash_num_perm) if b.config.near_dedup else None
        docs_path = b.work / "docs" / f"{rank:05d}.jsonl.gz"
        docs_path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(docs_path, "wt", encoding="utf-8", compresslevel=1) as docs, PartitionWriter(b, rank) as keys:
            for doc in data:
                m = doc.metadata
                digest = None
                if m["reason"] is None:
                    digest, signature = processor.hashes(doc.text)
                    keys.add(m["ordinal"], digest, index.band_keys(signature) if index is not None else [])
                docs.write(json.dumps([m["ordinal"], m["source"], doc.id, m["nbytes"], doc.text, m["reason"],
                                       m["removed"], m["encoding"], digest.hex() if digest else None],
                                      ensure_ascii=False) + "\n")
        _peak_rss(b, "process", rank)


class PartitionWriter:
    """A task's dedup keys, appended in chunks to one raw uint64 file per partition, so that the task
    holds one chunk, not its share of the corpus: exact/P/RANK.bin rows (digest, digest, ordinal) with
    P from the digest; bands/U/RANK.bin rows (band key, ordinal) with U from the band and the key."""

    CHUNK = 65_536  # documents

    def __init__(self, b: Build, rank: int) -> None:
        self.b, self.rows = b, []
        bands = _bands(b.config)
        self.exact = [self._open(b.work / "exact" / f"{p:05d}" / f"{rank:05d}.bin") for p in range(b.tasks)]
        self.bands = [self._open(b.work / "bands" / f"{u:05d}" / f"{rank:05d}.bin") for u in range(bands * b.band_parts)]

    @staticmethod
    def _open(path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")  # a rerun of a killed task starts the file again

    def add(self, ordinal_: int, digest: bytes, band_keys: list[int]) -> None:
        self.rows.append([*np.frombuffer(digest, dtype=np.uint64).tolist(), ordinal_, *band_keys])
        if len(self.rows) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        rows = np.array(self.rows, dtype=np.uint64)
        self.rows = []
        part = rows[:, 0] % np.uint64(len(self.exact))
        for p, f in enumerate(self.exact):
            rows[part == p][:, :3].tofile(f)
        parts = self.b.band_parts
        for band in range(rows.shape[1] - 3):
            keys = rows[:, 3 + band]
            unit = keys % np.uint64(parts)
            for k in range(parts):
                np.stack([keys[unit == k], rows[unit == k, 2]], axis=1).tofile(self.bands[band * parts + k])

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.flush()
        for f in self.exact + self.bands:
            f.close()


class RunJob(PipelineStep):
    """One of the jobs after `process`, as a single datatrove step."""

    type = "🫂 - DEDUP"

    def __init__(self, build: Build, job: str) -> None:
        super().__init__()
        self.build, self.job, self.name = build, job, f"hebrew-lm corpus {job}"

    def run(self, data=None, rank: int = 0, world_size: int = 1) -> None:
        JOB_FUNCTIONS[self.job](self.build, rank)
        if self.job != "finish":  # finish removed _work
            _peak_rss(self.build, self.job, rank)


# --------------------------------------------------------------------------------------------------
# Jobs 2-6


def buckets_job(b: Build, rank: int) -> None:
    """Exact duplicates per digest partition; groups of documents sharing a band key per band partition."""
    for p in b.units(rank, b.tasks):
        rows = _load_all(b.work / "exact" / f"{p:05d}", 3)
        rows = rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]
        again = np.zeros(len(rows), dtype=bool)
        again[1:] = (rows[1:, 0] == rows[:-1, 0]) & (rows[1:, 1] == rows[:-1, 1])
        _save(b.work / "exact_drops" / f"{p:05d}.bin", np.sort(rows[again, 2]))
    units = _bands(b.config) * b.band_parts
    for u in b.units(rank, units):
        rows = _load_all(b.work / "bands" / f"{u:05d}", 2)
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
        same_as_next = np.zeros(len(rows), dtype=bool)
        same_as_next[:-1] = rows[1:, 0] == rows[:-1, 0]
        in_group = same_as_next.copy()
        in_group[1:] |= same_as_next[:-1]
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = ~same_as_next[:-1]
        group = (np.cumsum(starts) - 1).astype(np.uint64) + np.uint64(u << 32)  # unique across partitions
        _save(b.work / "groups" / f"{u:05d}.bin", np.stack([rows[in_group, 1], group[in_group]], axis=1))


def clusters_job(b: Build, rank: int) -> None:
    """The near duplicates, decided in read order over the band-key groups (see the module docstring)."""
    exact_drops = _load_all(b.work / "exact_drops", 1)[:, 0]
    pairs = _load_all(b.work / "groups", 2)
    pairs = pairs[~np.isin(pairs[:, 0], exact_drops)]  # an exact copy never reaches the near-duplicate index
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    _, group = np.unique(pairs[:, 1], return_inverse=True)  # dense group numbers
    kept_in = np.full(group.max(initial=-1) + 1, -1, dtype=np.int64)  # group -> its kept member, -1: none yet
    near: dict[int, int] = {}  # ordinal -> the kept document it duplicates
    docs, starts = np.unique(pairs[:, 0], return_index=True)
    for doc, groups in zip(docs.tolist(), np.split(group, starts[1:])):
        kept = kept_in[groups]
        kept = kept[kept >= 0]  # at most one per group: a second member would have hit the first
        if len(kept):
            near[doc] = int(kept.min())
        else:
            kept_in[groups] = doc
    # The filter job of each original's task names it (file:line) for the rejects file.
    by_task: dict[int, dict[str, int]] = defaultdict(dict)
    wanted: dict[int, set[int]] = defaultdict(set)
    for doc, original in near.items():
        by_task[b.owner(doc)][str(doc)] = original
        wanted[b.owner(original)].add(original)
    for task in range(b.tasks):
        atomic_write_json(b.work / "near" / f"{task:05d}.json",
                          {"near": by_task.get(task, {}), "name": sorted(wanted.get(task, ()))})


def _read_docs(b: Build, task: int) -> Iterator[list]:
    with gzip.open(b.work / "docs" / f"{task:05d}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def filter_job(b: Build, rank: int) -> None:
    """This task's documents: kept into the shuffle buckets, or rejected with their reason; its counts."""
    c = b.config
    exact_drops = _load_all(b.work / "exact_drops", 1)[:, 0]
    exact = set((exact_drops[(exact_drops >> np.uint64(ITEM_SHIFT)) % np.uint64(b.tasks) == rank]).tolist())
    decided = json.loads((b.work / "near" / f"{rank:05d}.json").read_text(encoding="utf-8"))
    near = {int(k): v for k, v in decided["near"].items()}
    to_name, names = set(decided["name"]), {}
    stats = CorpusStats()
    folder = b.work / "filtered" / f"{rank:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    buckets = {(split, k): open(folder / f"{split}-{k:05d}.tsv", "w", encoding="utf-8")
               for split in SPLITS for k in range(b.num_buckets)}
    with open(folder / "rejects.tsv", "w", encoding="utf-8") as rejects:
        for o, source, where, nbytes, text, reason, removed, encoding, digest in _read_docs(b, rank):
            if o in to_name:
                names[o] = where
            stats.read(source, nbytes)
            stats.boilerplate_lines_removed += removed
            if encoding != "utf-8":
                stats.decoded_from[encoding] += 1
            extra = {}
            if reason is None and o in exact:
                reason = "exact_duplicate"
            elif reason is None and o in near:
                reason, extra = "near_duplicate", {"duplicate_of": near[o]}
            if reason is not None:
                stats.drop(source, nbytes, reason)
                rejects.write(f"{o}\t{reject_line(c, source, where, nbytes, text, reason, **extra)}")
                continue
            split, k = _split_and_bucket(bytes.fromhex(digest), c.seed, c.validation_fraction, b.num_buckets)
            buckets[(split, k)].write(f"{o}\t{bucket_line(where, source, text)}")
            stats.keep(source, nbytes, split, len(text.encode("utf-8")))
    for f in buckets.values():
        f.close()
    stats.check_invariant()
    atomic_write_json(folder / "names.json", names)
    atomic_write_json(folder / "stats.json", stats.to_dict())


def _merged(paths: list[Path]) -> Iterator[str]:
    """The lines of per-task files (each in ordinal order), merged into ordinal order, ordinals cut off."""
    files = [open(p, encoding="utf-8") for p in paths]
    try:
        keyed = (((int(line[: line.index("\t")]), line[line.index("\t") + 1:]) for line in f) for f in files)
        for _, line in heapq.merge(*keyed, key=lambda pair: pair[0]):
            yield line
    finally:
        for f in files:
            f.close()


def shards_job(b: Build, rank: int) -> None:
    """Some of the shuffle buckets: the tasks' parts merged into read order, shuffled, written as shards."""
    tasks = [b.work / "filtered" / f"{t:05d}" for t in range(b.tasks)]
    units = [(split, k) for split in SPLITS for k in range(b.num_buckets)]
    for u in b.units(rank, len(units)):
        split, k = units[u]
        rows = [json.loads(line) for line in _merged([t / f"{split}-{k:05d}.tsv" for t in tasks])]
        atomic_write_json(b.work / "shards" / f"{split}-{k:05d}.json", write_bucket(b.config, b.out, split, k, rows))


def finish_job(b: Build, rank: int) -> None:
    """The tasks' counts and rejects merged (rejects in read order), the manifest, then `finish`."""
    tasks = [b.work / "filtered" / f"{t:05d}" for t in range(b.tasks)]
    stats = CorpusStats()
    for t in tasks:
        stats.merge(json.loads((t / "stats.json").read_text(encoding="utf-8")))
    stats.check_invariant()
    names = {int(k): v for t in tasks for k, v in json.loads((t / "names.json").read_text(encoding="utf-8")).items()}
    started = time.time()
    rejects = open_rejects(b.work / "rejects.jsonl.gz")
    for line in _merged([t / "rejects.tsv" for t in tasks]):
        if '"duplicate_of": ' in line:  # the filter job wrote the original's ordinal: name it
            row = json.loads(line)
            row["duplicate_of"] = names[row["duplicate_of"]]
            line = json.dumps(row, ensure_ascii=False) + "\n"
        rejects.write(line.encode("utf-8"))
    rejects.close()
    log.info("corpus: rejects of %d tasks merged in %.1f s", len(tasks), time.time() - started)
    for tmp in b.out.glob(".*.tmp"):
        tmp.unlink()  # a shard a killed task had not finished
    manifest = manifest_of(b.config, {split: [s for k in range(b.num_buckets) for s in json.loads(
        (b.work / "shards" / f"{split}-{k:05d}.json").read_text(encoding="utf-8"))] for split in SPLITS})
    scan = stats.to_dict()
    check_scan(scan, b.items, b.work)
    peak: dict[str, float] = defaultdict(float)
    for p in (b.work / "rss").glob("*.json"):
        r = json.loads(p.read_text())
        peak[r["job"]] = max(peak[r["job"]], r["peak_rss_mb"])
    atomic_write_json(b.work / "scan.json", {"fingerprint": b.fp, "stats": scan})
    executor = {"executor": b.config.executor, "tasks": b.tasks, "peak_rss_mb_per_task": dict(peak)}
    finish(b.config, b.out, b.fp, b.num_buckets, manifest, executor=executor)


JOB_FUNCTIONS = {"buckets": buckets_job, "clusters": clusters_job, "filter": filter_job, "shards": shards_job,
                 "finish": finish_job}


# --------------------------------------------------------------------------------------------------
# Executors


def pipelines(b: Build) -> dict[str, tuple[list, int]]:
    """Each job's datatrove pipeline and its number of tasks."""
    return {
        "process": ([ReadInputs(b), CleanHebrew(b), WriteSignatures(b)], b.tasks),
        "buckets": ([RunJob(b, "buckets")], b.tasks),
        "clusters": ([RunJob(b, "clusters")], 1),
        "filter": ([RunJob(b, "filter")], b.tasks),
        "shards": ([RunJob(b, "shards")], b.tasks),
        "finish": ([RunJob(b, "finish")], 1),
    }


def _executor(config: CorpusConfig, pipeline: list, tasks: int, logging_dir: Path, depends):
    from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor, SlurmPipelineExecutor

    options = dict(config.executor_options)
    workers = config.workers or -1
    if config.executor == "local" and workers == -1:
        workers = min(tasks, os.cpu_count() or 1)
    if config.executor == "slurm":
        missing = [k for k in ("partition", "time") if k not in options]
        if missing:
            raise ValueError(f"corpus.executor slurm needs corpus.executor_options {' and '.join(missing)} "
                             f"(e.g. {{partition: cpu, time: \"04:00:00\"}})")
        options.setdefault("job_name", f"hebrew-lm-corpus-{logging_dir.name}")
    cls = {"local": LocalPipelineExecutor, "slurm": SlurmPipelineExecutor, "ray": RayPipelineExecutor}[config.executor]
    return cls(pipeline, tasks=tasks, workers=workers, logging_dir=str(logging_dir), depends=depends, **options)


def executors(config: CorpusConfig, items: list[ResolvedInput], fp: str, num_buckets: int):
    """The six jobs as datatrove executors chained with `depends`; the last one is returned (running it
    runs, or on Slurm submits, them all)."""
    out = Path(config.output_dir)
    bands = _bands(config)
    build = Build(config, items, fp, num_buckets, config.tasks, band_parts=max(1, -(-config.tasks // max(bands, 1))))
    executor = None
    for job, (pipeline, tasks) in pipelines(build).items():
        executor = _executor(config, pipeline, tasks, out / "datatrove" / job, executor)
    return executor


def run_pipeline(config: CorpusConfig, items: list[ResolvedInput], fp: str, num_buckets: int) -> None:
    """Run (local, Ray) or submit (Slurm) the six jobs; a rerun resumes from the completion markers."""
    out = Path(config.output_dir).absolute()  # Slurm and Ray tasks may start elsewhere
    config = dataclasses.replace(config, output_dir=str(out))
    marker = out / "_work" / "fingerprint.json"
    previous = json.loads(marker.read_text()) if marker.is_file() else None
    build_id = fingerprint({"fp": fp, "tasks": config.tasks})  # a task count change re-partitions everything
    if previous != {"build": build_id}:
        clear_owned_dir(out, "corpus", "no unfinished datatrove build of this config and task count to resume")
        for folder in ("rss", "near", "shards"):
            (out / "_work" / folder).mkdir(parents=True)
        atomic_write_json(marker, {"build": build_id})
    log.info("corpus: datatrove %s executor, %d tasks, %d input file(s), %d shuffle bucket(s); logs in %s",
             config.executor, config.tasks, len(items), num_buckets, out / "datatrove")
    if config.tasks > len(items):
        log.warning("corpus: %d tasks for %d input files: %d tasks will have no file to read (files are the unit "
                    "of the read+filter job)", config.tasks, len(items), config.tasks - len(items))
    last = executors(config, items, fp, num_buckets)
    if config.executor == "ray":
        import ray

        if not ray.is_initialized():
            ray.init()  # RAY_ADDRESS or a running cluster, else a local instance
    last.run()
    if config.executor == "slurm":
        log.info("corpus: submitted to Slurm; the corpus is done when %s appears (rerun this command to resume "
                 "after a failed job)", out / "_SUCCESS")
