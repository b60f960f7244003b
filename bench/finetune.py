"""Fine-tuning speed: the same fixed grid with our length-bucketed dynamic padding against padding
every input to 512 tokens, side by side in one script, with the scores each reached.

    python bench/finetune.py --tokenizer runs/tiny/tokenizer --preset tiny --write
    python bench/finetune.py --model path/to/encoder      # an encoder with 512 positions

Both runs train the same model on the same examples with the same grid and seeds; only batching and
padding differ. Without --model, the encoder is a --preset architecture with 512 positions and the
given tokenizer, initialized at random with a fixed seed (speed does not depend on the weights). The
data is the embedded `htb-ner` task (NEMO's labels on the Hebrew Treebank), cut to --sentences train
sentences, so this needs no download.
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
    parser.add_argument("--model", help="an encoder folder (default: a random-init --preset model)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--tokenizer", default="runs/tiny/tokenizer", help="tokenizer folder for the random-init model")
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
        if not args.model:
            from transformers import AutoTokenizer

            from hebrew_lm.mlm.model import build_model, roberta_config

            tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
            torch.manual_seed(0)
            build_model(roberta_config(args.preset, len(tokenizer), 512)).save_pretrained(tmp / "encoder")
            tokenizer.save_pretrained(tmp / "encoder")
            args.model = str(tmp / "encoder")
            label_model = f"{args.preset} architecture, 512 positions, random init, tokenizer `{args.tokenizer}`"
        else:
            label_model = f"`{args.model}`"
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
            trial = json.loads(next((out / "trials").glob("*/*/*/trial.json")).read_text(encoding="utf-8"))
            rows.append((label, seconds, cell["max_seq_len"], trial["history"][-1]["dev_loss"], cell["test_scores"][0]))
    base = rows[0][1]
    table = [f"Model: {label_model}; {args.sentences:,} train sentences of NEMO's train text, {len(args.learning_rates)} "
             f"learning rate(s) x batch {args.batch_size} x 1 seed x {args.epochs} epochs; {torch.get_num_threads()} "
             f"threads, {platform.processor() or platform.machine()}, torch {torch.__version__}.", "",
             "| batching | max length | wall time (s) | speed-up | dev loss, last epoch | test entity F1 |",
             "|---|---:|---:|---:|---:|---:|"]
    table += [f"| {label} | {max_len} | {seconds:.1f} | **{base / seconds:.2f}x** | {loss:.4f} | {f1:.3f} |"
              for label, seconds, max_len, loss, f1 in rows]
    text = "\n".join(table)
    print(text)
    if args.write:
        write_block("finetune.py", "CPU", text, "## Fine-tuning (`bench/finetune.py`)",
                    "The same fixed grid twice: every input padded to 512 tokens (what a plain `max_length` "
                    "tokenization with `padding=\"max_length\"` does) against our length-bucketed batches padded to "
                    "their longest input, with the task's max length from the 95th percentile. Command: "
                    "`python bench/finetune.py --preset tiny --sentences 500 --epochs 2 --write` (or `--model DIR`).")


if __name__ == "__main__":
    main()
