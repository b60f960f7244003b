"""Fine-tuning speed: the same fixed grid with our length-bucketed dynamic padding against what a user of
`transformers` gets by default (random batches, its collator padding each to its longest input) and
against padding every input to 512 tokens, side by side in one script, with the scores each reached.
The headline ratio is against the transformers default.

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

from hebrew_lm.finetune.config import FinetuneConfig, TaskSpec
from hebrew_lm.embedded.htb_ner import read_htb_ner
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
        for label, settings in (("padded to 512", dict(padding="max_length", max_seq_len=512)),
                                ("random batches padded to their longest (transformers' default)",
                                 dict(padding="longest", max_seq_len=0)),
                                ("length-bucketed dynamic padding (ours)", dict(padding="bucketed", max_seq_len=0))):
            config = FinetuneConfig(
                output_dir=str(tmp / settings["padding"]), models=[args.model], model_names=["m"],
                random_init_baseline=False, tasks=[TaskSpec("ner", **files)], learning_rates=args.learning_rates,
                batch_sizes=[args.batch_size], seeds=[1], max_epochs=args.epochs, patience=args.epochs,
                export_best=False, **settings)
            start = time.perf_counter()
            out = run(config)
            seconds = time.perf_counter() - start
            cell = json.loads(next((out / "trials").glob("*/*/cell.json")).read_text(encoding="utf-8"))
            trial = json.loads(next((out / "trials").glob("*/*/*/trial.json")).read_text(encoding="utf-8"))
            rows.append((label, seconds, cell["max_seq_len"], trial["history"][-1]["dev_loss"], cell["test_scores"][0]))
    table = [f"Model: {label_model}; {args.sentences:,} train sentences of NEMO's train text, {len(args.learning_rates)} "
             f"learning rate(s) x batch {args.batch_size} x 1 seed x {args.epochs} epochs; {torch.get_num_threads()} "
             f"threads, {platform.processor() or platform.machine()}, torch {torch.__version__}.", "",
             "| batching | max length | wall time (s) | speed-up of ours | dev loss, last epoch | test entity F1 |",
             "|---|---:|---:|---:|---:|---:|"]
    ours = rows[-1][1]
    for i, (label, seconds, max_len, loss, f1) in enumerate(rows):
        ratio = "" if i == len(rows) - 1 else f"{seconds / ours:.2f}x"
        ratio = f"**{ratio}**" if i == 1 else ratio  # the headline: against the transformers default
        table.append(f"| {label} | {max_len} | {seconds:.1f} | {ratio} | {loss:.4f} | {f1:.3f} |")
    text = "\n".join(table)
    print(text)
    if args.write:
        write_block("finetune.py", "CPU", text, "## Fine-tuning (`bench/finetune.py`)",
                    "The same fixed grid three times: every input padded to 512 tokens (`padding=\"max_length\"`), "
                    "random batches padded to their longest input (what `transformers`' collators do by default: the "
                    "headline ratio), and our length-bucketed batches padded to their longest input, with the task's "
                    "max length from the 95th percentile. Speed-up of ours = that row's wall time / ours. Command: "
                    "`python bench/finetune.py --preset tiny --sentences 1000 --epochs 3 --write` (or `--model DIR`).")


if __name__ == "__main__":
    main()
