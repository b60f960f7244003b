"""Fine-tuning speed: the same fixed grid with our length-bucketed dynamic padding against padding
every input to 512 tokens, side by side in one script, with the scores each reached.

    python bench/finetune.py --model runs/tiny/pretrain/model           # NEMO's train text (embedded htb-ner)
    python bench/finetune.py --model runs/quality/pretrain/model --sentences 2000 --write

Both runs train the same model on the same examples with the same grid and seeds; only batching and
padding differ. The data is the embedded `htb-ner` task (NEMO's labels on the Hebrew Treebank), cut to
--sentences train sentences, so this needs no download.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from hebrew_lm.config import FinetuneConfig, TaskSpec
from hebrew_lm.datasets.htb_ner import read_htb_ner
from hebrew_lm.finetune.stage import run

from benchmarks_md import write_block


def write_bmes(path: Path, sentences) -> str:
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags)) for s in sentences) + "\n",
                    encoding="utf-8")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an encoder folder")
    parser.add_argument("--sentences", type=int, default=1000, help="train sentences (dev and test: a fifth each)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning_rates", type=float, nargs="+", default=[1e-3])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()

    htb = read_htb_ner()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_eval = max(1, args.sentences // 5)
        files = {s: write_bmes(tmp / f"{s}.bmes", htb[s][: args.sentences if s == "train" else n_eval])
                 for s in ("train", "dev", "test")}
        for label, settings in (("padded to 512 (baseline)", dict(group_by_length=False, max_seq_len=512)),
                                ("length-bucketed dynamic padding (ours)", dict(group_by_length=True, max_seq_len=0))):
            config = FinetuneConfig(
                output_dir=str(tmp / label.split()[0]), models=[args.model], model_names=["m"],
                random_init_baseline=False, tasks=[TaskSpec("ner", **files)], learning_rates=args.learning_rates,
                batch_sizes=[args.batch_size], seeds=[1], max_epochs=args.epochs, patience=args.epochs,
                export_best=False, **settings)
            start = time.perf_counter()
            out = run(config)
            seconds = time.perf_counter() - start
            cell = json.loads(next((out / "trials").glob("*/*/cell.json")).read_text(encoding="utf-8"))
            rows.append((label, seconds, cell["max_seq_len"], cell["test_scores"][0]))
    base = rows[0][1]
    table = [f"Model `{args.model}`, {args.sentences:,} train sentences of NEMO's train text, {len(args.learning_rates)} "
             f"learning rate(s) x batch {args.batch_size} x 1 seed x {args.epochs} epochs; {torch.get_num_threads()} "
             f"threads, {platform.processor() or platform.machine()}, torch {torch.__version__}.", "",
             "| batching | max length | wall time (s) | speed-up | test entity F1 |", "|---|---:|---:|---:|---:|"]
    table += [f"| {label} | {max_len} | {seconds:.1f} | **{base / seconds:.2f}x** | {f1:.3f} |"
              for label, seconds, max_len, f1 in rows]
    text = "\n".join(table)
    print(text)
    if args.write:
        write_block("finetune.py", "CPU", text, "## Fine-tuning (`bench/finetune.py`)",
                    "The same fixed grid twice: every input padded to 512 tokens (what a plain `max_length` "
                    "tokenization with `padding=\"max_length\"` does) against our length-bucketed batches padded to "
                    "their longest input, with the task's max length from the 95th percentile. Command: "
                    "`python bench/finetune.py --model MODEL --write`.")


if __name__ == "__main__":
    main()
