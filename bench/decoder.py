"""Decoder benchmarks, side by side in one script: MoE against dense, and router balancing on and off.

    hebrew-lm run configs/tiny-decoder.yaml --until tokenizer      # the English corpus and tokenizer
    python bench/decoder.py --steps 60 --write                      # the CPU table in BENCHMARKS.md
    python bench/decoder.py --device cuda --steps 200               # on a GPU (bench/gpu.sh runs this)

Every row trains with the decoder stage itself (`hebrew-lm decoder pretrain`, the shared engine) on the
same corpus, tokenizer, batches and steps, then measures:
- validation loss at equal training tokens;
- training tokens/s (real tokens: padding not counted);
- generation tokens/s with `generate` at batch 1 and 16 (greedy, 32 new tokens after an 8-token prompt);
- the busiest expert's load over the mean at the end.
Rows: `decoder-tiny` (MoE: 8 experts top-2 + 1 shared), `dense-tiny` (the same active parameters),
`dense-tiny-wide` (the same total parameters), and `decoder-tiny` without the router bias update.
Hebatron's claim is ~9x throughput against a dense model of similar quality; at this size the experts
are too small for sparse activation to pay on a CPU, and the table says what we measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks_md import write_block

ROWS = [("decoder-tiny", 1e-3, "MoE, 8 experts top-2 + 1 shared"), ("dense-tiny", 1e-3, "dense, same active parameters"),
        ("dense-tiny-wide", 1e-3, "dense, same total parameters"), ("decoder-tiny", 0.0, "MoE, no bias update")]


def generation_tokens_per_s(model_dir: Path, batch: int, device: str, new_tokens: int = 32) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).to(device).eval()
    prompt = torch.randint(10, model.config.vocab_size, (batch, 8), generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        model.generate(prompt, max_new_tokens=2, do_sample=False, min_new_tokens=2)  # warm-up
        start = time.perf_counter()
        model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        if device == "cuda":
            torch.cuda.synchronize()
    return batch * new_tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/tiny-decoder", help="a run with the corpus and tokenizer stages done")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the engine takes a GPU whenever it sees one

    from hebrew_lm.config import load_preset, stage_config
    from hebrew_lm.decoder.train import run

    run_dir = Path(args.run_dir)
    if not (run_dir / "tokenizer" / "_SUCCESS").is_file():
        raise SystemExit(f"{run_dir}: run `hebrew-lm run configs/tiny-decoder.yaml --until tokenizer` first")
    base = stage_config(load_preset("configs/tiny-decoder.yaml"), "decoder")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, rate, label in ROWS:
            out = Path(tmp) / f"{preset}-{rate}"
            config = type(base)(**{**vars(base), "corpus_dir": str(run_dir / "corpus"),
                                   "tokenizer_dir": str(run_dir / "tokenizer"), "cache_dir": str(run_dir / "cache"),
                                   "output_dir": str(out), "model": preset, "balance_rate": rate,
                                   "max_steps": args.steps, "warmup_steps": max(1, args.steps // 10),
                                   "eval_every": args.steps, "checkpoint_every": args.steps,
                                   "precision": "bf16" if args.device == "cuda" else "fp32"})
            run(config)
            stats = json.loads((out / "stats.json").read_text())
            gen = [generation_tokens_per_s(out / "model", b, args.device) for b in (1, 16)]
            rows.append((preset, label, stats, gen))
            shutil.rmtree(out)
    moe = rows[0]
    table = [f"{args.steps} steps of {base.global_batch_size} pieces of at most {base.max_seq_len} tokens on "
             f"`{run_dir}` (English), {torch.get_num_threads()} threads, {args.device}"
             f"{'' if args.device == 'cuda' else ' (' + (platform.processor() or platform.machine()) + ')'}, "
             f"torch {torch.__version__}. Ratios: the MoE row / this row.", "",
             "| model | parameters (active) | validation loss | train tok/s | gen tok/s, batch 1 | gen tok/s, batch 16 | "
             "max/mean expert load | MoE train speed / this |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for preset, label, stats, gen in rows:
        tok_s = stats["tokens_seen"] / stats["wall_seconds"]
        moe_tok_s = moe[2]["tokens_seen"] / moe[2]["wall_seconds"]
        load = stats.get("final_max_over_mean_load")
        table.append(f"| `{preset}` ({label}) | {stats['parameters']:,} ({stats['active_parameters']:,}) | "
                     f"{stats['final_val_loss']:.4f} | {tok_s:,.0f} | {gen[0]:,.1f} | {gen[1]:,.1f} | "
                     f"{'-' if load is None else f'{load:.2f}'} | {moe_tok_s / tok_s:.2f} |")
    text = "\n".join(table)
    print(text)
    if args.write:
        write_block("decoder.py", "CPU" if args.device == "cpu" else "GPU", text, "## Decoder (`bench/decoder.py`)",
                    "MoE against dense and router balancing on and off, each row a `hebrew-lm decoder pretrain` run "
                    "on the same data and steps. Command: `hebrew-lm run configs/tiny-decoder.yaml --until tokenizer`, "
                    "then `python bench/decoder.py --steps 60 --write`.")


if __name__ == "__main__":
    main()
