"""SFT throughput and memory on the tiny CPT model, with and without length bucketing.

    hebrew-lm run configs/tiny-decoder.yaml --until cpt     # the tiny CPT model and the corpora
    python bench/sft.py --steps 30 --write                  # the table in BENCHMARKS.md

Each row runs the SFT stage itself (configs/tiny-decoder.yaml's sft section: the embedded demo mix,
weighted sources, batches of 16 conversations in micro-batches of 8) for the same steps in its own
process. Tokens/s is the engine's (conversations x their mean length, per second, over the logged
steps after the first); padding is the share of padded positions in the micro-batches the run read;
peak memory is the process's peak resident set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks_md import write_block

VARIANTS = [("plain shuffle (baseline)", False), ("length-bucketed (default)", True)]


def child(preset: str, steps: int, bucketing: bool, out: str) -> None:
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.sft import stage

    config = stage_config(load_preset(preset), "sft")
    config = dataclasses.replace(config, max_steps=steps, log_every=5, eval_every=steps, checkpoint_every=steps,
                                 warmup_steps=max(1, steps // 10), length_bucketing=bucketing, output_dir=out)
    folder = stage.run(config)
    records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r][1:]
    print(json.dumps({"tokens_per_s": statistics.median(speeds),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "padding": padding_share(config, steps)}))


def padding_share(config, steps: int) -> float:
    """The share of padded positions in the micro-batches of the run's first `steps` steps."""
    from transformers import AutoTokenizer

    from hebrew_lm.sft.stage import encode_sources, load_sources, mix_stream

    tokenizer = AutoTokenizer.from_pretrained(str(next(Path(config.cache_dir).glob("chat-tokenizer-*"))))
    sources = load_sources(config.inputs, config.hebrew_corpus_dir, config.english_corpus_dir, config.per_source, config.seed)
    splits, counts = encode_sources(sources, tokenizer, config)
    stream, _ = mix_stream(splits["train"], counts, config)
    lengths = [len(ids) for ids, _, _ in splits["train"]]
    real = padded = 0
    for step in range(steps):
        ids = stream.indices(step * config.global_batch_size, config.global_batch_size)
        for start in range(0, len(ids), config.micro_batch_size):
            micro = [lengths[i] for i in ids[start: start + config.micro_batch_size]]
            real += sum(micro)
            padded += max(micro) * len(micro)
    return 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="configs/tiny-decoder.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument("--child", nargs=2, metavar=("BUCKETING", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.preset, args.steps, args.child[0] == "1", args.child[1])
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, bucketing in VARIANTS:
            done = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps),
                                   "--child", "1" if bucketing else "0", str(Path(tmp) / label[:5])],
                                  capture_output=True, text=True, check=True)
            rows.append((label, json.loads(done.stdout.strip().splitlines()[-1])))
            print(label, rows[-1][1], flush=True)
    base = rows[0][1]
    table = "\n".join([
        f"`{args.preset}`'s sft section, {args.steps} steps, 2 CPU cores, fp32.", "",
        "| batches | tokens/s | padded positions | peak memory (MiB) | speed vs baseline |", "|---|---:|---:|---:|---:|",
        *[f"| {label} | {r['tokens_per_s']:.0f} | {100 * r['padding']:.0f}% | {r['peak_mib']:.0f} | "
          f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x |" for label, r in rows]])
    print("\n" + table)
    if args.write:
        write_block("sft.py", "tiny", table, "## SFT throughput (`bench/sft.py`)",
                    "The SFT stage with and without length bucketing; `python bench/sft.py --steps 30 --write`.")


if __name__ == "__main__":
    main()
