"""Benchmark: the whole corpus stage against datatrove's MinHash deduplication, side by side; or
(`--executor local`) the single-machine path against the same stage on datatrove's local executor.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/corpus.py --size-mb 200            # writes the table into BENCHMARKS.md
    .venv/bin/python bench/corpus.py --size-mb 1000 --executor local --tasks 1 2 4

Input: ~SIZE MB of modern Hebrew documents built from ../shared/data/hebrew_raw_text (each document
15-40 random sentences, so documents share sentences but not long runs of words), plus planted
duplicates (5% exact copies, 5% near copies: half with 2% of the words replaced at random places,
half with one run of 5% replaced), as JSONL in 8 files.

Both tools run in their own subprocess with 2 workers; wall time and the peak RSS of the largest
process are measured from outside. Ours runs the *whole* stage (normalization, filters, exact and
near dedup, shuffle, shards); datatrove runs only its 4-stage MinHash pipeline (signatures, buckets,
clusters, filter) with the same word 5-grams and the same 14 bands x 9 rows. Both are scored on the
planted pairs (a pair is found when exactly one of its two documents is removed as a duplicate).

With `--executor local`: `hebrew-lm corpus build` with tasks 0 (one process tree, `--workers`
processes) and then with each of `--tasks` on datatrove's LocalPipelineExecutor (at most `--workers`
tasks at once, always in pool processes, so a one-task job's peak is its own); the peak RSS of every
task comes from the build's own stats.json. The corpus must come
out the same each time (checked: the same rejects, the same shards).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hebrew_raw_text"
NUM_FILES = 8


# --------------------------------------------------------------------------------------------------
# Input


def sentence_pool() -> list[str]:
    lines = []
    for path in sorted(DATA.glob("*/*.txt")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            line = line.strip()
            if len(line.split()) >= 5:
                lines.append(line)
    if not lines:
        raise SystemExit(f"no text found under {DATA}")
    return lines


def make_input(folder: Path, size_mb: float, seed: int = 0):
    from hebrew_lm.corpus.dedup_eval import plant_duplicates

    rng = random.Random(seed)
    pool = sentence_pool()
    target = size_mb * 1e6 * 0.9  # the planted copies add the last ~10%
    unique, total = [], 0
    while total < target:
        doc = " ".join(rng.sample(pool, rng.randint(15, 40)))
        unique.append(doc)
        total += len(doc.encode("utf-8"))
    n = len(unique) // 20
    docs, pairs = plant_duplicates(unique, num_exact=n, num_near=n, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    where_to_index = {}
    files = [open(folder / f"part-{i:02d}.jsonl", "w", encoding="utf-8") for i in range(NUM_FILES)]
    lines = [0] * NUM_FILES
    per_file = -(-len(docs) // NUM_FILES)
    for i, doc in enumerate(docs):
        f = i // per_file
        files[f].write(json.dumps({"id": str(i), "text": doc}, ensure_ascii=False) + "\n")
        lines[f] += 1
        where_to_index[f"{folder / f'part-{f:02d}.jsonl'}:{lines[f]}"] = i
    for f in files:
        f.close()
    size = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
    return docs, pairs, where_to_index, size


def write_planted(work: Path, size_mb: float) -> None:
    """The input, and what scoring needs of it in planted.json. Run in its own process: a process that
    forks a measured run while it holds the documents passes its RSS peak on (Linux keeps ru_maxrss
    across fork and exec), which once inflated the peaks this benchmark reported by about 1 GB."""
    docs, pairs, where_to_index, size = make_input(work / "input", size_mb)
    (work / "planted.json").write_text(json.dumps({
        "num_docs": len(docs), "size": size, "where_to_index": where_to_index,
        "pairs": [[p.original, p.copy, p.kind] for p in pairs]}))


def read_planted(work: Path):
    from hebrew_lm.corpus.dedup_eval import PlantedPair

    planted = json.loads((work / "planted.json").read_text())
    pairs = [PlantedPair(*p) for p in planted["pairs"]]
    return planted["num_docs"], pairs, planted["where_to_index"], planted["size"]


# --------------------------------------------------------------------------------------------------
# The two tools, each run in a subprocess of this script


def run_ours(input_dir: Path, work: Path, workers: int, tasks: int = 0, name: str = "ours") -> None:
    from hebrew_lm.corpus.config import CorpusConfig, InputSpec
    from hebrew_lm.corpus.stage import run

    run(CorpusConfig(output_dir=str(work / name), inputs=[InputSpec(path=str(input_dir / "*.jsonl"))],
                     num_workers=workers, shard_size_mb=64, tasks=tasks, workers=workers), force=True)


def _whitespace_tokenizer():
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        # datatrove's default for Hebrew needs spaCy; a plain split is what our stage uses too.
        def word_tokenize(self, text):
            return text.split()

        def sent_tokenize(self, text):
            return text.split("\n")

        def span_tokenize(self, text):
            return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]

    return Whitespace()


def run_datatrove(input_dir: Path, work: Path, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    w = work / "datatrove"
    # sha1: datatrove's default xxhash breaks with xxhash 4.x (STACK-NOTES.md)
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=9,
                           hash_config=HashConfig(precision=64, hash_fc="sha1"))
    tok = _whitespace_tokenizer()
    common = dict(workers=workers, skip_completed=False)
    LocalPipelineExecutor(pipeline=[JsonlReader(str(input_dir)), MinhashDedupSignature(str(w / "sigs"), config=config, language=tok)],
                          tasks=NUM_FILES, logging_dir=str(w / "logs1"), **common).run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(str(w / "sigs"), str(w / "buckets"), config=config)],
                          tasks=config.num_buckets, logging_dir=str(w / "logs2"), **common).run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(str(w / "buckets"), str(w / "remove_ids"), config=config)],
                          tasks=1, logging_dir=str(w / "logs3"), **common).run()
    LocalPipelineExecutor(pipeline=[JsonlReader(str(input_dir)),
                                    MinhashDedupFilter(str(w / "remove_ids"), exclusion_writer=JsonlWriter(str(w / "removed"))),
                                    JsonlWriter(str(w / "deduped"))],
                          tasks=NUM_FILES, logging_dir=str(w / "logs4"), **common).run()


def timed_subprocess(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the largest process of the tree) of `python bench/corpus.py ARGS`.

    The tree is sampled every 0.1 s with psutil: wait4's ru_maxrss misses pool workers that a
    forkserver, not the measured process, waits for (datatrove's executors start theirs that way)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args])
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in tree:
            try:
                peak = max(peak, p.memory_info().rss)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if proc.wait() != 0:
        raise SystemExit(f"{args[1]} failed with status {proc.returncode}")
    return wall, peak / 2**20


# --------------------------------------------------------------------------------------------------
# Scoring and the report


DUPLICATE_REASONS = ("exact_duplicate", "near_duplicate")


def rejected_by_ours(work: Path, where_to_index: dict[str, int], name: str = "ours") -> tuple[set[int], set[int]]:
    """(removed as duplicates, dropped by a quality filter): the second is left out of both tools' scores."""
    import gzip

    with gzip.open(work / name / "rejects.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    dups = {where_to_index[r["where"]] for r in rows if r["reason"] in DUPLICATE_REASONS}
    filtered = {where_to_index[r["where"]] for r in rows if r["reason"] not in DUPLICATE_REASONS}
    return dups, filtered


def removed_by_datatrove(work: Path) -> set[int]:
    import gzip

    removed = set()
    for path in glob.glob(str(work / "datatrove" / "removed" / "*")):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            removed.update(int(json.loads(line)["id"]) for line in f)
    return removed


def write_benchmarks_md(table: str, size_mb: float) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from benchmarks_md import write_block

    write_block("corpus.py", f"{size_mb:g} MB", table, "## Corpus stage (`bench/corpus.py`)",
                "The whole `hebrew-lm corpus build` against datatrove's MinHash deduplication alone.")


def shards_digest(out: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted(out.glob("*-[0-9][0-9][0-9][0-9][0-9].*")) + [out / "rejects.jsonl.gz"]:
        h.update(p.read_bytes())
    return h.hexdigest()


def executor_table(args, results: dict, same: bool, num_docs: int, num_pairs: int, size: int) -> str:
    mb = size / 1e6
    single = results["single"]
    t2 = 2 if 2 in args.tasks else args.tasks[0]
    two = results[f"tasks{t2}"]
    # A task runs in a pool process that the measured process does not wait for, so a datatrove run's
    # largest process is its largest task (from its stats.json), not what wait4 reports.
    two_peak = max(two["rss"], *two["per_task"].values())
    rows = [
        ("wall time (s)", f"{single['wall']:.1f}", f"{two['wall']:.1f}", f"{two['wall'] / single['wall']:.2f}"),
        ("throughput (MB/s)", f"{mb / single['wall']:.2f}", f"{mb / two['wall']:.2f}", f"{single['wall'] / two['wall']:.2f}"),
        ("peak RSS, largest process (MB)", f"{single['rss']:.0f}", f"{two_peak:.0f}", f"{two_peak / single['rss']:.2f}"),
        ("recall, all planted", f"{single['recall_all']:.3f}", f"{two['recall_all']:.3f}", ""),
        ("precision", f"{single['precision']:.3f}", f"{two['precision']:.3f}", ""),
    ]
    jobs = ["process", "buckets", "clusters", "filter", "shards"]
    task_rows = [f"| {t} | {results[f'tasks{t}']['wall']:.1f} | {mb / results[f'tasks{t}']['wall']:.2f} | "
                 + " | ".join(f"{results[f'tasks{t}']['per_task'].get(j, 0):.0f}" for j in jobs) + " |"
                 for t in args.tasks]
    return (
        f"`python bench/corpus.py --size-mb {args.size_mb:g} --executor local --workers {args.workers} --tasks "
        f"{' '.join(map(str, args.tasks))}` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores: {num_docs:,} "
        f"documents, {mb:.0f} MB of JSONL in {NUM_FILES} files, {num_pairs:,} planted duplicate pairs, "
        f"`shuffle_buffer_mb` 512 (the default). The corpus (shards and rejects) came out "
        f"{'byte-identical in every run' if same else 'DIFFERENT between runs'}.\n\n"
        f"| | single machine (tasks 0) | datatrove local, {t2} tasks | ratio datatrove / single |\n|---|---|---|---|\n"
        + "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
        + f"\n\nPeak RSS of the largest task of each job (MB), datatrove local, at most {args.workers} tasks at "
        "once; `shards` holds one shuffle bucket at a time:\n\n"
        "| tasks | wall (s) | MB/s | " + " | ".join(jobs) + " |\n|---|---|---|" + "---|" * len(jobs) + "\n"
        + "\n".join(task_rows)
    )


def executor_comparison(args, work: Path) -> None:
    """The single-machine path against datatrove's local executor at each task count."""
    from hebrew_lm.corpus.dedup_eval import score_removals

    runs = {"single": 0, **{f"tasks{t}": t for t in args.tasks}}
    timings = {name: timed_subprocess(["--_run", "ours", "--work", str(work), "--workers", str(args.workers),
                                       "--_tasks", str(tasks), "--_name", name]) for name, tasks in runs.items()}
    num_docs, pairs, where_to_index, size = read_planted(work)
    results, digests = {}, {}
    for name, (wall, rss) in timings.items():
        removed, filtered = rejected_by_ours(work, where_to_index, name)
        stats = json.loads((work / name / "stats.json").read_text())
        per_task = stats.get("executor", {}).get("peak_rss_mb_per_task", {})
        results[name] = {"wall": wall, "rss": rss, "per_task": per_task,
                         **score_removals(num_docs, pairs, removed, exclude=filtered)}
        digests[name] = shards_digest(work / name)
        print(name, json.dumps(results[name]), flush=True)
    same = all(d == digests["single"] for d in digests.values())
    (work / "executor_results.json").write_text(json.dumps(
        {"results": results, "same": same, "num_docs": num_docs, "pairs": len(pairs), "size": size}))
    table = executor_table(args, results, same, num_docs, len(pairs), size)
    print("\n" + table)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).parent))
        from benchmarks_md import write_block

        write_block("corpus.py --executor", f"{args.size_mb:g} MB", table,
                    "## Corpus stage on datatrove's executors (`bench/corpus.py --executor local`)",
                    "The single-machine path against the same stage as a datatrove pipeline (issue 18).")
        print(f"\nwritten to {REPO / 'BENCHMARKS.md'}")
    if not same:
        raise SystemExit("the corpus differs between runs: " + json.dumps(digests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=["local"], help="compare the single-machine path with datatrove's local executor")
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2, 4], help="task counts for --executor")
    parser.add_argument("--work", default=str(REPO / "bench" / "_work" / "corpus"))
    parser.add_argument("--no-write", action="store_true", help="print the table only, leave BENCHMARKS.md alone")
    parser.add_argument("--_run", choices=["make", "ours", "datatrove"], help=argparse.SUPPRESS)
    parser.add_argument("--_tasks", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--_name", default="ours", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    input_dir = work / "input"
    if args._run == "make":
        return write_planted(work, args.size_mb)
    if args._run == "ours":
        return run_ours(input_dir, work, args.workers, args._tasks, args._name)
    if args._run == "datatrove":
        return run_datatrove(input_dir, work, args.workers)

    import shutil

    from hebrew_lm.corpus.dedup_eval import score_removals

    shutil.rmtree(work, ignore_errors=True)
    timed_subprocess(["--_run", "make", "--work", str(work), "--size-mb", str(args.size_mb)])
    if args.executor:
        return executor_comparison(args, work)
    timings = {}
    for tool in ("ours", "datatrove"):
        timings[tool] = timed_subprocess(["--_run", tool, "--work", str(work), "--workers", str(args.workers)])
    num_docs, pairs, where_to_index, size = read_planted(work)
    print(f"input: {num_docs:,} documents, {size / 1e6:.1f} MB in {NUM_FILES} JSONL files", flush=True)
    removed_ours, filtered = rejected_by_ours(work, where_to_index)
    results = {}
    for tool, removed in (("ours", removed_ours), ("datatrove", removed_by_datatrove(work))):
        wall, rss = timings[tool]
        results[tool] = {"wall": wall, "rss": rss, **score_removals(num_docs, pairs, removed, exclude=filtered)}
        print(tool, json.dumps(results[tool]), flush=True)
    ours, dt = results["ours"], results["datatrove"]
    mb = size / 1e6
    rows = [
        ("what runs", "whole stage: normalize, filters, exact + near dedup, shuffle, shards", "MinHash dedup only (4 stages)", ""),
        ("wall time (s)", f"{ours['wall']:.1f}", f"{dt['wall']:.1f}", f"{ours['wall'] / dt['wall']:.2f}"),
        ("throughput (MB/s)", f"{mb / ours['wall']:.2f}", f"{mb / dt['wall']:.2f}", f"**{dt['wall'] / ours['wall']:.2f}**"),
        ("peak RSS, largest process (MB)", f"{ours['rss']:.0f}", f"{dt['rss']:.0f}", f"{ours['rss'] / dt['rss']:.2f}"),
        ("recall, exact copies", f"{ours['recall_exact']:.3f}", f"{dt['recall_exact']:.3f}", ""),
        ("recall, 2% words replaced", f"{ours['recall_scattered']:.3f}", f"{dt['recall_scattered']:.3f}", ""),
        ("recall, 5% run replaced", f"{ours['recall_block']:.3f}", f"{dt['recall_block']:.3f}", ""),
        ("recall, all planted", f"{ours['recall_all']:.3f}", f"{dt['recall_all']:.3f}", ""),
        ("precision", f"{ours['precision']:.3f}", f"{dt['precision']:.3f}", ""),
        ("unique documents removed", f"{ours['unique_removed']}", f"{dt['unique_removed']}", ""),
    ]
    table = (
        f"`python bench/corpus.py --size-mb {args.size_mb:g} --workers {args.workers}` on {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores: {num_docs:,} documents, {mb:.0f} MB of JSONL, "
        f"{len(pairs):,} planted duplicate pairs ({results['ours']['pairs_scored']:,} scored: pairs with a document "
        f"that our quality filters drop, {len(filtered):,} documents in all, are left out for both tools).\n\n"
        "| | hebrew-lm corpus build | datatrove MinHash | ratio ours / datatrove |\n|---|---|---|---|\n"
        + "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    )
    print("\n" + table)
    if not args.no_write:
        write_benchmarks_md(table, args.size_mb)
        print(f"\nwritten to {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
