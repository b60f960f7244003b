"""Issue 5's quality check into BENCHMARKS.md: does our pretraining transfer? And the paper's first open
question: does whole-word masking transfer better than single-token masking?

    hebrew-lm run bench/configs/quality.yaml        # corpus, tokenizer, pretrain (< 2 h on this CPU), finetune
    python bench/quality.py --write                  # the pretrained model against its random-init twin

    hebrew-lm run bench/configs/quality.yaml --until pretrain
    hebrew-lm run bench/configs/quality.yaml --until pretrain --pretrain.whole_word_masking true \\
        --pretrain.output_dir runs/quality/pretrain-wwm
    hebrew-lm finetune bench/configs/quality.yaml --models runs/quality/pretrain/model \\
        runs/quality/pretrain-wwm/model --model_names "token masking" "whole-word masking" \\
        --random_init_baseline false --output_dir runs/quality/finetune-wwm
    python bench/quality.py --wwm --write            # whole-word against single-token masking

Each prints one table in the paper's layout (BMC, NEMO, SMCD, average): two models under the same
grid and seeds, their difference, and the pretraining facts behind them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from benchmarks_md import write_block

from hebrew_lm.finetune.results import beyond_seed_noise


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def comparison(results: dict, first: str, second: str, difference: str) -> list[str]:
    """Rows for two models of a finetune results.json, their difference, and which differences are
    beyond seed noise."""
    names, columns, models = results["task_names"], results["columns"], results["models"]

    def cell(model: str, n: str) -> str:
        t = models[model]["tasks"][n]["test"]
        return f"{100 * t['mean']:.2f} ± {100 * t['std']:.2f}"

    lines = ["| model | " + " | ".join(columns) + " | average |", "|---|" + "---:|" * (len(columns) + 1)]
    for model in (first, second):
        lines.append(f"| {model} | " + " | ".join(cell(model, n) for n in names) + f" | {100 * models[model]['average']:.2f} |")
    diffs = [100 * (models[first]["tasks"][n]["test"]["mean"] - models[second]["tasks"][n]["test"]["mean"]) for n in names]
    lines.append(f"| **{difference}** | " + " | ".join(f"**{d:+.2f}**" for d in diffs)
                 + f" | **{100 * (models[first]['average'] - models[second]['average']):+.2f}** |")
    clear, noisy = [], []
    for c, n in zip(columns, names):
        (clear if beyond_seed_noise(models[first]["tasks"][n]["test"], models[second]["tasks"][n]["test"]) else noisy).append(c)
    return lines + ["", f"Differences larger than the larger standard deviation of the two rows: {', '.join(clear) or 'none'}; "
                        f"within seed noise: {', '.join(noisy) or 'none'}."]


def grid(results: dict) -> str:
    g = results["grid"]
    return (f"Grid: learning rates {g['learning_rates']} x batch {g['batch_sizes']}, seeds {g['seeds']}, at most "
            f"{g['max_epochs']} epochs (patience {g['patience']}); test score x 100, mean ± std over seeds (BMC: over "
            "seeds and its 3 splits).")


def fill_mask(pretrain_stats: dict) -> str:
    """The held-out fill-mask accuracy against the unigram guess, where the stats have it."""
    f = pretrain_stats.get("fill_mask")
    return (f", held-out fill-mask top-1 {100 * f['top1']:.1f}% (unigram {100 * f['unigram_top1']:.1f}%), top-5 "
            f"{100 * f['top5']:.1f}% ({100 * f['unigram_top5']:.1f}%)") if f else ""


def learning_curve_rows(results: dict, first: str, second: str) -> list[str]:
    """The two models' learning curves side by side, one row per task and training-set size."""
    curves = results.get("learning_curves")
    if not curves:
        return []
    lines = ["", "Learning curves (the same hyperparameters as the full set, the same seeds; test x 100):", "",
             f"| task | train examples | {first} | {second} | difference | beyond seed noise |", "|---|---:|---:|---:|---:|---|"]
    for task, points in curves[first].items():
        for ours, theirs in zip(points, curves[second][task]):
            a, b = ({"mean": p["test"][0], "std": p["test"][1]} for p in (ours, theirs))
            lines.append(f"| {task} | {ours['train_size']:,} | {100 * a['mean']:.2f} ± {100 * a['std']:.2f} | "
                         f"{100 * b['mean']:.2f} ± {100 * b['std']:.2f} | {100 * (a['mean'] - b['mean']):+.2f} | "
                         f"{'yes' if beyond_seed_noise(a, b) else 'no'} |")
    return lines


def pretrained_vs_random_init(run: Path) -> str:
    results = read_json(run / "finetune" / "results.json")
    pre = read_json(run / "pretrain" / "stats.json")
    timings = read_json(run / "timings" / "timings.json") if (run / "timings" / "timings.json").is_file() else {}
    models = results["models"]
    pretrained = next(m for m, r in models.items() if not r["random_init"])
    baseline = next(m for m, r in models.items() if r["random_init"])
    return "\n".join([
        f"Pretraining: tiny preset ({pre['parameters']:,} parameters), {pre['steps']:,} steps, {pre['tokens_seen'] / 1e6:.1f}M "
        f"tokens in {pre['wall_seconds'] / 60:.0f} min on 2 CPU cores, final validation perplexity "
        f"{math.exp(pre['final_val_loss']):,.0f}{fill_mask(pre)}; fine-tuning {timings.get('finetune', results.get('seconds', 0)) / 60:.0f} min. "
        + grid(results), "", *comparison(results, pretrained, baseline, "pretrained − random init"),
        *learning_curve_rows(results, pretrained, baseline)])


def whole_word_vs_token(run: Path) -> str:
    results = read_json(run / "finetune-wwm" / "results.json")
    token, whole = read_json(run / "pretrain" / "stats.json"), read_json(run / "pretrain-wwm" / "stats.json")
    return "\n".join([
        f"Both pretrained alike ({token['steps']:,} steps, {token['tokens_seen'] / 1e6:.1f}M tokens, 15% chosen) but for "
        "what is chosen: single byte-level BPE tokens, or whole words (every piece of a chosen word). Validation "
        f"perplexity, masking 15% of single tokens for both: {math.exp(token['final_val_loss']):,.0f} (token masking) and "
        f"{math.exp(whole['final_val_loss']):,.0f} (whole-word masking; it was not trained on that task). "
        + grid(results), "", *comparison(results, "whole-word masking", "token masking", "whole-word − token masking")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", default="runs/quality")
    parser.add_argument("--wwm", action="store_true", help="whole-word against single-token masking")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    run = Path(args.run_dir)
    if args.wwm:
        text = whole_word_vs_token(run)
        section = ("## Whole-word masking (`bench/quality.py --wwm`)",
                   "The paper's first open question, on the quality check's corpus, tokenizer, recipe and fine-tuning "
                   "grid: the same tiny encoder pretrained with whole-word masking (`pretrain.whole_word_masking: true`) "
                   "against single-token masking, both fine-tuned in one run on NEMO, BMC and SMCD. Commands in "
                   "`bench/quality.py`'s docstring.")
    else:
        text = pretrained_vs_random_init(run)
        section = ("## Quality check: pretraining transfers (`bench/quality.py`)",
                   "A tiny encoder pretrained by `hebrew-lm pretrain` on this CPU on `../shared/data/hebrew_raw_text` "
                   "plus the embedded classical texts (no Hebrew Treebank text: it is NEMO's), against the same "
                   "architecture from random initialization, fine-tuned on NEMO, BMC and SMCD under the same grid and "
                   "seeds. Commands: `hebrew-lm run bench/configs/quality.yaml`, then `python bench/quality.py --write`.")
    print(text)
    if args.write:
        write_block("quality.py wwm" if args.wwm else "quality.py", "real data", text, *section)


if __name__ == "__main__":
    main()
