"""Decoder benchmarks, side by side in one script: our engine against the stock `Trainer`, MoE against
dense, and router balancing and length bucketing on and off.

    hebrew-lm run configs/tiny-decoder.yaml --until tokenizer      # the English corpus and tokenizer
    python bench/decoder.py --steps 60 --write                      # the CPU tables in BENCHMARKS.md
    python bench/decoder.py --device cuda --steps 200               # on a GPU (bench/gpu.sh runs this)
    python bench/decoder.py --only engine --run-dir runs/realbase --base runs/realbase/gemma --write  # Gemma 3 270M

Engine table: the same `decoder-tiny` model, data and micro-batches (the engine's length-bucketed
stream, handed to `Trainer` in order with `train_sampling_strategy="sequential"`), the same AdamW,
schedule and clipping, fp32 on CPU; at the tokenizer's vocabulary and at 131,072 (the model's
embeddings widened; the data's ids stay below 8,000) with pieces of up to 1,024 tokens. Tokens/s is real
tokens over the steady steps (the first step and checkpoints excluded); peak memory is the process's
peak resident set (each row is its own process) and its growth over the loaded model, data and
optimizer-free state just before training. `Trainer` computes the loss from the whole
[batch, sequence, vocabulary] logits; our objective in chunks of `chunk_tokens` positions.

Model table: every row trains with the decoder stage itself (`hebrew-lm decoder pretrain`, the shared engine) on the
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

ROWS = [("decoder-tiny", 1e-3, True, "MoE, 8 experts top-2 + 1 shared"),
        ("dense-tiny", 1e-3, True, "dense, same active parameters"),
        ("dense-tiny-wide", 1e-3, True, "dense, same total parameters"),
        ("decoder-tiny", 0.0, True, "MoE, no bias update"),
        ("decoder-tiny", 1e-3, False, "MoE, no length bucketing")]
ENGINE_ROWS = [(engine, vocab) for vocab in (0, 131_072) for engine in ("trainer", "ours")]


def engine_row(engine: str, vocab: int, run_dir: Path, steps: int, micro: int, seq: int, out: Path,
               base: Path | None = None) -> dict:
    """One engine's steady tokens/s and peak memory on decoder-tiny, or on a real `base` continued on
    RUN_DIR/hebrew_corpus (runs in its own process)."""
    import resource

    from transformers import AutoTokenizer

    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.decoder.data import DocumentPieces, base_bos, pad_batch
    from hebrew_lm.decoder.objective import CausalLMObjective
    from hebrew_lm.decoder.stage import preset_decoder
    from hebrew_lm.engine.token_store import build_token_store, eos_token
    from hebrew_lm.engine.stream import SequenceStream
    from hebrew_lm.engine.dist import Dist
    from hebrew_lm.engine.loop import train
    from hebrew_lm.tokenizer.extend import embedding_rows

    c = stage_config(load_preset("configs/tiny-decoder.yaml"), "decoder")
    c = type(c)(**{**vars(c), "output_dir": str(out), "max_seq_len": seq, "global_batch_size": micro,
                   "micro_batch_size": micro, "max_steps": steps, "warmup_steps": 1, "log_every": 1,
                   "eval_every": 10**6, "checkpoint_every": 10**6})
    tokenizer_dir, corpus = (base, run_dir / "hebrew_corpus") if base else (run_dir / "tokenizer", run_dir / "corpus")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    eos = tokenizer.convert_tokens_to_ids(eos_token(tokenizer_dir))
    data = DocumentPieces(build_token_store(corpus, tokenizer_dir, "train", run_dir / "cache"), seq, bos=base_bos(tokenizer_dir))
    torch.manual_seed(c.seed)
    if base:  # a real base at its own vocabulary, the rate the realbase CPT runs use
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        c = type(c)(**{**vars(c), "learning_rate": 1e-4})
    else:
        model = preset_decoder(c, embedding_rows(vocab or len(tokenizer)),
                               {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": eos, "pad_token_id": eos})
    order = SequenceStream(len(data), c.seed, data.lengths(), micro).indices(0, steps * micro)
    real_tokens = [int(data.lengths()[order[i * micro : (i + 1) * micro]].sum()) for i in range(steps)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if engine == "ours":
        out.mkdir(parents=True)
        objective = CausalLMObjective(model, chunk_tokens=c.chunk_tokens, balance_rate=c.balance_rate)
        train(c, objective, lambda idx, step, m: pad_batch([data[i] for i in idx], eos), len(data), out, "bench",
              Dist(), stage="decoder", sequence_lengths=data.lengths())
        times = [json.loads(line)["elapsed_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    else:
        from transformers import Trainer, TrainerCallback, TrainingArguments

        class Pieces(torch.utils.data.Dataset):
            def __len__(self):
                return len(order)

            def __getitem__(self, i):
                return data[order[i]]

        def collate(pieces):
            ids, mask = pad_batch(pieces, eos)
            return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}

        times = []

        class Clock(TrainerCallback):
            def on_step_end(self, *args, **kwargs):
                times.append(time.perf_counter())

        args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=micro, max_steps=steps,
                                 learning_rate=c.learning_rate, warmup_steps=1, weight_decay=c.weight_decay,
                                 adam_beta1=c.adam_beta1, adam_beta2=c.adam_beta2, adam_epsilon=c.adam_eps,
                                 max_grad_norm=c.grad_clip, lr_scheduler_type="linear", save_strategy="no",
                                 logging_strategy="no", report_to=[], use_cpu=True, seed=c.seed,
                                 train_sampling_strategy="sequential", dataloader_num_workers=0)
        Trainer(model=model, args=args, train_dataset=Pieces(), data_collator=collate, callbacks=[Clock()]).train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = times[-1] - times[0]
    return {"engine": engine, "vocab": model.config.vocab_size, "tokens_per_s": sum(real_tokens[1:]) / seconds,
            "peak_rss_mib": peak / 1024, "growth_mib": (peak - before) / 1024,
            "mean_piece": float(data.lengths().mean())}


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
    parser.add_argument("--engine-steps", type=int, default=6, help="steps per row of the engine table")
    parser.add_argument("--only", choices=["engine", "models"], help="run one table")
    parser.add_argument("--write", action="store_true", help="write the tables into BENCHMARKS.md")
    parser.add_argument("--engine-row", nargs=2, metavar=("ENGINE", "VOCAB"), help=argparse.SUPPRESS)
    parser.add_argument("--base", help="the engine table on this real base (a Hugging Face folder, e.g. "
                        "runs/realbase/gemma), continued on RUN_DIR/hebrew_corpus with pieces of up to 256 tokens")
    args = parser.parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the engine takes a GPU whenever it sees one

    run_dir = Path(args.run_dir)
    needed = run_dir / ("hebrew_corpus" if args.base else "tokenizer") / "_SUCCESS"
    if not needed.is_file():
        raise SystemExit(f"{run_dir}: run `hebrew-lm run " + ("bench/configs/realbase.yaml --until hebrew_corpus"
                         if args.base else "configs/tiny-decoder.yaml --until tokenizer") + "` first")
    if args.engine_row:
        with tempfile.TemporaryDirectory() as tmp:
            row = engine_row(args.engine_row[0], int(args.engine_row[1]), run_dir, args.engine_steps, 4,
                             256 if args.base else 1024, Path(tmp) / "out", Path(args.base) if args.base else None)
        print("ROW " + json.dumps(row))
        return
    if args.only != "models":
        engine_table(args)
    if args.only != "engine":
        model_table(args, run_dir)


def engine_table(args) -> None:
    import subprocess
    import sys

    rows = []
    for engine, vocab in ENGINE_ROWS[:2] if args.base else ENGINE_ROWS:
        done = subprocess.run([sys.executable, __file__, "--run-dir", args.run_dir, "--engine-steps", str(args.engine_steps),
                               "--engine-row", engine, str(vocab), *(["--base", args.base] if args.base else [])],
                              check=True, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        rows.append(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("ROW "))[4:]))
    what = (f"`{args.base}` continued on `{args.run_dir}/hebrew_corpus`, {args.engine_steps} steps of 4 pieces of up to "
            f"256 tokens (mean {rows[0]['mean_piece']:.0f})" if args.base else
            f"`decoder-tiny`, {args.engine_steps} steps of 4 pieces of up to 1,024 tokens (mean "
            f"{rows[0]['mean_piece']:.0f}: the corpus's paragraphs)")
    table = [f"{what}, fp32, {torch.get_num_threads()} threads, cpu "
             f"({platform.processor() or platform.machine()}), torch {torch.__version__}.", "",
             "| vocabulary | engine | train tok/s | peak memory (MiB) | growth in training (MiB) | ours / Trainer: speed | memory growth |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for trainer, ours in zip(rows[::2], rows[1::2]):
        for r in (trainer, ours):
            ratio = (f"{ours['tokens_per_s'] / trainer['tokens_per_s']:.2f} | {ours['growth_mib'] / trainer['growth_mib']:.2f}"
                     if r is ours else "| ")
            table.append(f"| {r['vocab']:,} | {'ours' if r is ours else 'stock Trainer'} | {r['tokens_per_s']:,.0f} | "
                         f"{r['peak_rss_mib']:,.0f} | {r['growth_mib']:,.0f} | {ratio} |")
    text = "\n".join(table)
    print(text)
    if args.write:
        write_block("decoder.py engine", Path(args.base).name if args.base else "CPU" if args.device == "cpu" else "GPU", text,
                    "## Decoder engine against the stock `Trainer` (`bench/decoder.py`)",
                    "Our loop (the one both tracks train on) against `transformers.Trainer` on the same model, data, "
                    "micro-batches and optimizer. Command: `hebrew-lm run configs/tiny-decoder.yaml --until tokenizer`, "
                    "then `python bench/decoder.py --only engine --write`; on a real base (Gemma 3 270M, its "
                    "262,144-token vocabulary): `hebrew-lm run bench/configs/realbase.yaml --until gemma`, then "
                    "`python bench/decoder.py --only engine --run-dir runs/realbase --base runs/realbase/gemma --write`.")


def model_table(args, run_dir: Path) -> None:
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.decoder.stage import run

    base = stage_config(load_preset("configs/tiny-decoder.yaml"), "decoder")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, rate, bucketing, label in ROWS:
            out = Path(tmp) / f"{preset}-{rate}-{bucketing}"
            config = type(base)(**{**vars(base), "corpus_dir": str(run_dir / "corpus"),
                                   "tokenizer_dir": str(run_dir / "tokenizer"), "cache_dir": str(run_dir / "cache"),
                                   "output_dir": str(out), "model": preset, "balance_rate": rate,
                                   "length_bucketing": bucketing,
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
