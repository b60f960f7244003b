"""Benchmark: the engine's AdamW step, fused (what `make_optimizer` builds) against torch's CPU default
(one Python loop over the tensors, a dozen kernels each) and its `foreach` variant, side by side on the
same models and gradients; and what each costs in a whole training step (forward and backward of the
engine's objective on one batch, timed once per model).

    .venv/bin/python bench/optimizer.py            # writes its table into BENCHMARKS.md

Models: the encoder presets tiny and small (vocabulary 8,000), decoder-tiny, and a model of
SmolLM2-135M's shape (Llama, 30 layers of 576, vocabulary 49,152: the real GGUF base of the CPT tests),
built from its config here with random weights: nothing is downloaded. The parameter groups are the
engine's own (decay on matrices only), taken from `make_optimizer`'s optimizer.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_block

from hebrew_lm.engine.optim import make_optimizer

HYPER = SimpleNamespace(learning_rate=1e-3, weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.98, adam_eps=1e-6)


def models(batch: int, seq: int):
    """(name, objective, batch) for each model: a loss we can call backward on."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, RobertaForMaskedLM

    from hebrew_lm.decoder.model import decoder_config
    from hebrew_lm.decoder.objective import CausalLMObjective
    from hebrew_lm.mlm.model import MaskedLMObjective, roberta_config

    torch.manual_seed(0)
    ids = torch.randint(5, 8000, (batch, seq))
    labels = torch.where(torch.rand(batch, seq) < 0.15, ids, torch.full_like(ids, -100))
    for preset in ("tiny", "small"):
        yield f"encoder {preset}", MaskedLMObjective(RobertaForMaskedLM(roberta_config(preset, 8000))), (ids, labels)
    yield "decoder-tiny", CausalLMObjective(AutoModelForCausalLM.from_config(decoder_config("decoder-tiny", 8000))), (ids,)
    smol = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
    yield "SmolLM2-135M shape", CausalLMObjective(LlamaForCausalLM(smol)), (torch.randint(0, 49152, (batch, seq)),)


def seconds(fn, repeats: int) -> float:
    fn()  # the first call allocates (the optimizer's moments, autograd's buffers)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()

    rows = []
    for name, objective, batch in models(args.batch, args.seq):
        params = sum(p.numel() for p in objective.parameters())

        def step_grads():
            objective.zero_grad(set_to_none=True)
            objective(*batch).backward()

        forward_backward = seconds(step_grads, max(1, args.repeats // 2))
        fused = make_optimizer(objective.model, HYPER)
        groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in fused.param_groups]
        timed = {}
        for label, kw in (("loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", None)):
            optimizer = fused if kw is None else torch.optim.AdamW(
                groups, lr=HYPER.learning_rate, betas=(HYPER.adam_beta1, HYPER.adam_beta2), eps=HYPER.adam_eps, **kw)
            timed[label] = seconds(optimizer.step, args.repeats)
        whole = (forward_backward + timed["loop"]) / (forward_backward + timed["fused"])
        rows.append(f"| {name} | {params / 1e6:.1f}M | {forward_backward * 1e3:,.0f} | {timed['loop'] * 1e3:,.1f} | "
                    f"{timed['foreach'] * 1e3:,.1f} | {timed['fused'] * 1e3:,.1f} | "
                    f"**{timed['loop'] / timed['fused']:.1f}** | **{whole:.2f}** |")
        print(rows[-1], flush=True)

    table = "\n".join([
        f"`python bench/optimizer.py --batch {args.batch} --seq {args.seq} --repeats {args.repeats}` on {date.today()}, "
        f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}), fp32, torch {torch.__version__}.",
        "",
        "| model | parameters | forward + backward (ms, batch "
        f"{args.batch} x {args.seq}) | AdamW step, loop (ms) | foreach (ms) | fused, ours (ms) | optimizer speedup | "
        "whole step speedup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows])
    print(table)
    if not args.no_write:
        write_block("optimizer.py", "CPU", table, "## Optimizer step (`bench/optimizer.py`)",
                    "The engine's fused AdamW against torch's CPU default, on the same models and gradients.")


if __name__ == "__main__":
    main()
