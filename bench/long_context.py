"""The long-context cost curve: the hybrid (Mamba-2 + MoE + attention) against the same model with
attention in every layer, at context lengths doubling from 512 until a row no longer fits.

    python bench/long_context.py --write                       # the table in BENCHMARKS.md
    python bench/long_context.py --max-length 4096             # a quick look

Rows (all random-initialized, vocabulary 8,000, batch 1, fp32, the CPU):
- `decoder-tiny`: Nemotron-3's pattern in miniature, `MEM*EM`: 2 Mamba-2 layers, 1 attention, 3 MoE;
- `attention-tiny`: the same with attention in place of every Mamba-2 layer (`*E**E*`, 8 heads): the
  same parameters within 1%;
- `decoder-tiny` with gradient checkpointing (`decoder.gradient_checkpointing`): what the option saves.

Each (model, length) runs in its own process: one training step to warm up, then the mean of two
steps (one when a step takes over 30 s; forward, backward through the engine's chunked loss, AdamW)
in seconds; the process's peak resident memory over the model and optimizer before the first step
(ru_maxrss); generation tokens/s: 32 greedy tokens after a prompt of the full length, timed from the
first new token to the last (a logits processor stamps each), so the prefill is not in it. A series stops after the first length whose step passes `--max-step-seconds` or whose
memory growth passes `--memory-gb`. The growth exponent is the slope of log(cost) against log(length)
over the last three lengths a series reached (1: linear, 2: quadratic), and a fit of a x length +
b x length^2 says how much of the longest step the quadratic term makes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

ROWS = [("decoder-tiny", False, "hybrid: 2 Mamba-2 + 1 attention + 3 MoE"),
        ("attention-tiny", False, "attention in every mixer layer (3 + 1), same MoE"),
        ("decoder-tiny", True, "hybrid, gradient checkpointing")]


def measure(model_name: str, checkpointing: bool, length: int, new_tokens: int = 32) -> dict:
    """One (model, length) in this process: step seconds, memory growth, generation tokens/s."""
    import resource

    import torch
    from transformers import AutoModelForCausalLM

    from hebrew_lm.decoder.model import decoder_config
    from hebrew_lm.decoder.objective import CausalLMObjective

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(decoder_config(model_name, 8000, max_position_embeddings=max(4096, length)))
    if checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    objective = CausalLMObjective(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(10, 8000, (1, length), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.train()
    times = []
    while len(times) < (2 if times and times[0] > 30 else 3):  # a warm-up step, then two (one past 30 s)
        start = time.perf_counter()
        objective(ids, mask).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        objective.after_step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.eval()
    stamps: list[float] = []

    def clock(input_ids, scores):  # a logits processor: called once per new token, the first after the prefill
        stamps.append(time.perf_counter())
        return scores

    with torch.no_grad():
        start = time.perf_counter()
        model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens + 1, min_new_tokens=new_tokens + 1,
                       do_sample=False, logits_processor=[clock])
    return {"model": model_name, "checkpointing": checkpointing, "length": length,
            "step_s": sum(times[1:]) / len(times[1:]), "growth_gib": (peak - before) / 2**20,
            "generate_tok_s": new_tokens / (stamps[-1] - stamps[0]), "prefill_s": stamps[0] - start}


def exponent(points: list[tuple[int, float]]) -> float | None:
    """Slope of log(value) against log(length) over the last three points (least squares)."""
    pts = [(math.log(x), math.log(y)) for x, y in points[-3:] if y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def quadratic_share(points: list[tuple[int, float]]) -> float:
    """Fit step time = a x length + b x length^2 (least squares, relative errors) and return b x L^2's share of
    the fitted time at the longest length L: near 0 the cost grows linearly, near 1 quadratically."""
    import numpy as np

    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    design = np.stack([x, x**2], axis=1) / y[:, None]  # each point weighed by 1/y: the short lengths count too
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    a, b = max(a, 0.0), max(b, 0.0)
    longest = x.max()
    return b * longest**2 / max(a * longest + b * longest**2, 1e-12)


def table(rows: list[dict]) -> str:
    lengths = sorted({r["length"] for r in rows})
    series = [(m, ck, what) for m, ck, what in ROWS if any(r["model"] == m and r["checkpointing"] == ck for r in rows)]

    def get(m, ck, n):
        return next((r for r in rows if r["model"] == m and r["checkpointing"] == ck and r["length"] == n), None)

    out = ["| context | " + " | ".join(f"{m}{' (ckpt)' if ck else ''} step s / growth GiB / gen tok/s" for m, ck, _ in series)
           + " | step time, attention / hybrid |", "|---:|" + "---:|" * (len(series) + 1)]
    for n in lengths:
        cells = []
        for m, ck, _ in series:
            r = get(m, ck, n)
            cells.append("-" if r is None else f"{r['step_s']:.2f} / {r['growth_gib']:.2f} / {r['generate_tok_s']:.0f}")
        hybrid, attention = get("decoder-tiny", False, n), get("attention-tiny", False, n)
        ratio = f"{attention['step_s'] / hybrid['step_s']:.2f}x" if hybrid and attention else "-"
        out.append(f"| {n:,} | " + " | ".join(cells) + f" | {ratio} |")
    out += ["", "| series | step time exponent | quadratic term's share of the longest step | memory exponent | "
            "generation: tok/s at the shortest / longest |", "|---|---:|---:|---:|---:|"]
    for m, ck, what in series:
        got = [r for r in rows if r["model"] == m and r["checkpointing"] == ck]
        t = exponent([(r["length"], r["step_s"]) for r in got])
        g = exponent([(r["length"], r["growth_gib"]) for r in got])
        share = quadratic_share([(r["length"], r["step_s"]) for r in got])
        out.append(f"| {m}{' (ckpt)' if ck else ''}: {what} | {t:.2f} | {share:.0%} | {g:.2f} | "
                   f"{got[0]['generate_tok_s']:.0f} / {got[-1]['generate_tok_s']:.0f} |"
                   if t is not None and g is not None else f"| {m} | - | - | - | - |")
    crossover = [n for n in lengths if get("decoder-tiny", False, n) and get("attention-tiny", False, n)
                 and get("attention-tiny", False, n)["step_s"] > get("decoder-tiny", False, n)["step_s"]]
    out += ["", f"Crossover (attention's step slower than the hybrid's) from {crossover[0]:,} tokens on."
            if crossover else "No crossover in the measured range: attention's step is faster at every length measured."]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-length", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=65_536)
    parser.add_argument("--max-step-seconds", type=float, default=120.0, help="stop a series after a slower step")
    parser.add_argument("--memory-gb", type=float, default=16.0, help="stop a series after a larger memory growth")
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "CHECKPOINTING", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1] == "1", int(args.one[2]))))
        return
    rows = []
    for model, checkpointing, _ in ROWS:
        length = args.min_length
        while length <= args.max_length:
            got = subprocess.run([sys.executable, __file__, "--one", model, "1" if checkpointing else "0", str(length)],
                                 capture_output=True, text=True)
            if got.returncode != 0:
                print(f"{model} at {length}: failed ({got.stderr.strip().splitlines()[-1:]}); series stops", flush=True)
                break
            row = json.loads(got.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
            if row["step_s"] > args.max_step_seconds or row["growth_gib"] > args.memory_gb:
                break
            length *= 2
    text = table(rows)
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from benchmarks_md import write_block

        header = (f"`python bench/long_context.py --max-length {args.max_length} --max-step-seconds "
                  f"{args.max_step_seconds:g} --write` on {platform.processor() or platform.machine()} "
                  f"({__import__('os').cpu_count()} cores), {time.strftime('%Y-%m-%d')}. Batch 1, fp32, vocabulary 8,000, "
                  "random weights; step = forward + backward + AdamW; growth = peak resident memory over the "
                  "model and optimizer; generation = 32 greedy tokens after a prompt of the full length.\n\n")
        write_block("long_context.py", "cost curve", header + text, "## Long context: the hybrid's cost curve",
                    "Issue 19's measured version of the hybrid's long-context claim (docs/cpt.md, context extension).")
        print("written to BENCHMARKS.md")


if __name__ == "__main__":
    main()
