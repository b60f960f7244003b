"""Benchmark: tokens/s of our pretraining loop against the stock recipe, side by side, same model and data.

    .venv/bin/hebrew-lm run configs/tiny.yaml --until tokenizer        # corpus + 8k tokenizer
    .venv/bin/hebrew-lm run bench/configs/vocab52k.yaml                # same corpus, the paper's 52k vocabulary
    .venv/bin/python bench/pretrain.py                                 # writes its table into BENCHMARKS.md

Stock recipe (what transformers' run_mlm.py does): `RobertaForMaskedLM` + `DataCollatorForLanguageModeling`
+ `Trainer`, fed the same packed sequences. Ours: `hebrew-lm pretrain` itself (token store, our
masking, logits at masked positions only, AdamW), in a subprocess, its tokens/s read from
metrics.jsonl. Both on the same device and precision (fp32 on the CPU by default), micro-batch 16 with no accumulation, sequences of 128 tokens,
the first WARMUP steps left out of the timing. Both sides train alike: AdamW with RoBERTa's betas and
eps, weight decay 0.01, linear warmup and decay, 15% masking, no gradient clipping (the stock
Trainer clips at 1.0 unless told otherwise; ours follows the paper). Losses are compared as the mean
of the last LAST_LOSSES steps (different random masks, so equal within noise, not bit for bit).

Our loop's model FLOPs utilization (MFU): its tokens/s x training FLOPs per token (6 x non-embedding
parameters + attention + the vocabulary projection at masked positions, as `hebrew-lm plan` counts
them) / the matmul FLOP/s measured on the same device and precision. On a GPU (the issue's H100
check): `--device cuda --precision bf16 --presets base --seq 512 --batch 32`, and again with
`--compile` (both sides compiled).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WARMUP = 5
LAST_LOSSES = 10


def mean_of_last(losses: list[float]) -> float:
    return sum(losses[-LAST_LOSSES:]) / len(losses[-LAST_LOSSES:])


def ours(run_dir: Path, work: Path, preset: str, steps: int, seq: int, batch: int, device: str,
         precision: str, compile: bool) -> dict:
    out = work / f"ours-{preset}"
    config = work / f"ours-{preset}.yaml"
    config.write_text(yaml.safe_dump({"run_dir": str(run_dir), "pretrain": {
        "output_dir": str(out), "model": preset, "max_seq_len": seq, "global_batch_size": batch,
        "micro_batch_size": batch, "max_steps": steps, "warmup_steps": 2, "learning_rate": 5e-4,
        "log_every": 1, "eval_every": 10_000, "checkpoint_every": 10_000, "resume": "never",
        "precision": precision, "compile": compile}}))
    # our stage takes a GPU whenever one is visible; hide it when the stock side runs on the CPU
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})}
    subprocess.run([sys.executable, "-m", "hebrew_lm", "pretrain", str(config), "--force"], check=True,
                   capture_output=True, env=env)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r and "event" not in r]
    # tokens/s between the end of step WARMUP and the last step, from the cumulative rate of each record
    t_warm = train[WARMUP - 1]["tokens_seen"] / train[WARMUP - 1]["tokens_per_s"]
    t_end = train[-1]["tokens_seen"] / train[-1]["tokens_per_s"]
    return {"tokens_per_s": (train[-1]["tokens_seen"] - train[WARMUP - 1]["tokens_seen"]) / (t_end - t_warm),
            "loss": mean_of_last([r["loss"] for r in train])}


def stock(run_dir: Path, work: Path, preset: str, steps: int, seq: int, batch: int, device: str,
          precision: str, compile: bool) -> dict:
    from transformers import (DataCollatorForLanguageModeling, PreTrainedTokenizerFast, Trainer,
                              TrainerCallback, TrainingArguments)

    from hebrew_lm.mlm.data import PackedSequences
    from hebrew_lm.engine.token_store import build_token_store
    from hebrew_lm.mlm.model import build_model, roberta_config

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run_dir / "tokenizer"))
    store = build_token_store(run_dir / "corpus", run_dir / "tokenizer", "train", run_dir / "cache")
    packed = PackedSequences(store, seq)

    class Items:
        def __len__(self):
            return len(packed)

        def __getitem__(self, i):
            return {"input_ids": packed[i]}

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks = []

        def on_step_end(self, args, state, control, **kw):
            self.marks.append(time.perf_counter())

    torch_seed = 0
    model = build_model(roberta_config(preset, len(tokenizer), seq))
    clock = Clock()
    args = TrainingArguments(output_dir=str(work / f"stock-{preset}"), per_device_train_batch_size=batch,
                             max_steps=steps, learning_rate=5e-4, warmup_steps=2, weight_decay=0.01,
                             adam_beta2=0.98, adam_epsilon=1e-6, max_grad_norm=0.0, logging_steps=1, report_to=[], use_cpu=device == "cpu",
                             bf16=precision == "bf16", torch_compile=compile,
                             save_strategy="no", dataloader_num_workers=0, seed=torch_seed, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=Items(), callbacks=[clock],
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    elapsed = clock.marks[-1] - clock.marks[WARMUP - 1]
    return {"tokens_per_s": (len(clock.marks) - WARMUP) * batch * seq / elapsed,
            "loss": mean_of_last(losses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dirs", nargs="+", default=[str(REPO / "runs" / "tiny"), str(REPO / "runs" / "vocab52k")],
                        help="run folders holding corpus/ and tokenizer/ (one table row per folder and preset)")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import torch

    from hebrew_lm.plan import measured_matmul_flops, training_flops_per_token

    peak = measured_matmul_flops(args.device, args.precision, seconds=2.0)
    work = REPO / "bench" / "_work" / "pretrain"
    work.mkdir(parents=True, exist_ok=True)
    rows, inputs = [], []
    for run_dir in map(Path, args.run_dirs):
        vocab = json.loads((run_dir / "tokenizer" / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
        inputs.append(f"`{os.path.relpath(run_dir, REPO)}` ({len(vocab):,} tokens)")
        for preset in args.presets:
            setting = (run_dir, work, preset, args.steps, args.seq, args.batch, args.device, args.precision, args.compile)
            s = stock(*setting)
            if args.device == "cuda":  # hand the stock run's cached GPU memory back before ours starts
                gc.collect()  # the Trainer holds reference cycles
                torch.cuda.empty_cache()
            o = ours(*setting)
            _, flops_per_token = training_flops_per_token(preset, len(vocab), args.seq, 0.15)
            mfu = o["tokens_per_s"] * flops_per_token / peak
            print(run_dir.name, preset, "stock", s, "ours", o, f"MFU {mfu:.1%}", flush=True)
            rows.append(f"| {preset} | {len(vocab):,} | {s['tokens_per_s']:,.0f} | {o['tokens_per_s']:,.0f} "
                        f"| **{o['tokens_per_s'] / s['tokens_per_s']:.2f}** | {mfu:.1%} | {s['loss']:.3f} | {o['loss']:.3f} |")
    where = (f"{os.cpu_count()} CPU cores" if args.device == "cpu" else torch.cuda.get_device_name(0))
    flags = "".join(f" --{k} {v}" for k, v in [("device", args.device), ("precision", args.precision)]
                    if v != parser.get_default(k)) + (" --compile" if args.compile else "")
    table = (
        f"`python bench/pretrain.py --steps {args.steps} --seq {args.seq} --batch {args.batch}{flags}` on "
        f"{time.strftime('%Y-%m-%d')}, {where}, {args.precision}; the embedded default corpus, with "
        f"the tokenizers of {' and '.join(inputs)}. MFU: our tokens/s x training FLOPs per token / the "
        f"{args.precision} matmul rate measured here ({peak / 1e12:,.3g} TFLOP/s).\n\n"
        "| preset | vocab | stock Trainer + collator (tok/s) | hebrew-lm pretrain (tok/s) | ratio | our MFU "
        f"| stock loss (mean of the last {LAST_LOSSES} steps) | our loss |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
    )
    print("\n" + table)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).parent))
        from benchmarks_md import write_block

        write_block("pretrain.py", "CPU" if args.device == "cpu" else "GPU", table, "## Pretraining (`bench/pretrain.py`)",
                    "Our loop against the stock `transformers` masked-LM recipe on the same model config and data.")


if __name__ == "__main__":
    main()
