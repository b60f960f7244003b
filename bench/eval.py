"""lm-eval's few-shot throughput on a decoder-tiny model, and what its own options buy.

    hebrew-lm run configs/tiny-decoder.yaml --until cpt     # a decoder-tiny model (or pass --model)
    python bench/eval.py --items 40 --write                 # the table in BENCHMARKS.md

A 25-shot task (ARC-HE's protocol: letter choices after the listed options) built from the embedded
sentiment demo, scored by lm-eval's HF backend under each setting below, model loaded once per setting
(the time is the scoring only). Requests are log-likelihood requests, one per item and choice.
Settings: batch size 1 (the baseline), 8 and 32, lm-eval's `auto` batch size, and batch 8 with its
logits cache off: with one-token continuations (" A", " B", " C") the cache scores every choice of an
item from one forward pass over the shared context, so this row shows what re-encoding costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks_md import write_block

from hebrew_lm.embedded.sentiment_demo import SENTIMENT_WORDS
from hebrew_lm.evaluate.tasks import Task, letters, write_task

SETTINGS = [("batch 1 (baseline)", 1, True), ("batch 8", 8, True), ("batch 32", 32, True),
            ("batch auto", "auto", True), ("batch 8, logits cache off", 8, False)]


def build_task(folder: Path, items: int) -> str:
    from hebrew_lm.embedded.sentiment_demo import LABELS, sentiment_demo

    splits = sentiment_demo()
    options = [SENTIMENT_WORDS[label] for label in LABELS]

    def rows(examples):
        out = []
        for e in examples:
            query, choices = letters(f"מה הסנטימנט של התגובה: {e.text}", options)
            out.append({"query": query, "choices": choices, "gold": LABELS.index(e.label), "where": e.where})
        return out

    task = Task("bench_letters_25shot", "Hebrew", "multiple_choice", 25, "acc", "ענו באות של התשובה הנכונה.")
    return write_task(folder, task, rows(splits["train"][:40]), rows(splits["test"][:items]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/tiny-decoder/cpt/model")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        name = build_task(Path(tmp), args.items)
        manager = TaskManager(include_path=[tmp])
        rows, scores = [], set()
        for label, batch, cache in SETTINGS:
            lm = HFLM(pretrained=args.model, dtype="float32", device="cpu", batch_size=batch, logits_cache=cache)
            started = time.perf_counter()
            out = lm_eval.simple_evaluate(model=lm, tasks=[name], task_manager=manager)
            seconds = time.perf_counter() - started
            requests = args.items * 3
            scores.add(round(out["results"][name]["acc,none"], 6))
            rows.append((label, seconds, requests / seconds))
            print(f"{label:28s} {seconds:7.1f} s {requests / seconds:7.1f} requests/s", flush=True)
    base = rows[0][2]
    table = "\n".join([
        f"Model {args.model}, task {name}: {args.items} items x 3 choices = {args.items * 3} requests, 25 shots, "
        f"2 CPU cores; the same accuracy under every setting: {'yes' if len(scores) == 1 else f'no {sorted(scores)}'}.",
        "", "| setting | seconds | requests/s | ratio to batch 1 |", "|---|---:|---:|---:|",
        *[f"| {label} | {s:.1f} | {r:.1f} | {r / base:.2f}x |" for label, s, r in rows]])
    print("\n" + table)
    if args.write:
        write_block("eval.py", "decoder-tiny", table, "## Few-shot evaluation throughput (`bench/eval.py`)",
                    "lm-evaluation-harness's HF backend on a 25-shot letter-choice task; "
                    "`python bench/eval.py --items 40 --write`.")


if __name__ == "__main__":
    main()
