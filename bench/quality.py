"""Issue 5's quality check into BENCHMARKS.md: does our pretraining transfer?

    hebrew-lm run bench/configs/quality.yaml        # corpus, tokenizer, pretrain (< 2 h on this CPU), finetune
    python bench/quality.py --write                  # the pretrained model against its random-init twin

Reads runs/quality/{pretrain,finetune} and prints one table: the paper's layout (BMC, NEMO, SMCD,
average), pretrained against the same architecture from random initialization under the same grid
and seeds, with the difference, and the pretraining facts behind it.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from benchmarks_md import write_block

from hebrew_lm.finetune.results import beyond_seed_noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", default="runs/quality")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    run = Path(args.run_dir)
    results = json.loads((run / "finetune" / "results.json").read_text(encoding="utf-8"))
    pre = json.loads((run / "pretrain" / "stats.json").read_text(encoding="utf-8"))
    timings = json.loads((run / "timings.json").read_text(encoding="utf-8")) if (run / "timings.json").is_file() else {}
    names, columns = results["task_names"], results["columns"]
    models = results["models"]
    pretrained = next(m for m, r in models.items() if not r["random_init"])
    baseline = next(m for m, r in models.items() if r["random_init"])

    def cell(model: str, n: str) -> str:
        t = models[model]["tasks"][n]["test"]
        return f"{100 * t['mean']:.2f} ± {100 * t['std']:.2f}"

    lines = [
        f"Pretraining: tiny preset ({pre['parameters']:,} parameters), {pre['steps']:,} steps, {pre['tokens_seen'] / 1e6:.1f}M "
        f"tokens in {pre['wall_seconds'] / 60:.0f} min on 2 CPU cores, final validation perplexity "
        f"{math.exp(pre['final_val_loss']):,.0f}; fine-tuning {timings.get('finetune', results.get('seconds', 0)) / 60:.0f} min. "
        f"Grid: learning rates {results['grid']['learning_rates']} x batch {results['grid']['batch_sizes']}, seeds "
        f"{results['grid']['seeds']}, at most {results['grid']['max_epochs']} epochs (patience {results['grid']['patience']}); "
        "test score x 100, mean ± std over seeds (BMC: over seeds and its 3 splits).", "",
        "| model | " + " | ".join(columns) + " | average |", "|---|" + "---:|" * (len(columns) + 1),
    ]
    for model in (pretrained, baseline):
        lines.append(f"| {model} | " + " | ".join(cell(model, n) for n in names) + f" | {100 * models[model]['average']:.2f} |")
    diffs = [100 * (models[pretrained]["tasks"][n]["test"]["mean"] - models[baseline]["tasks"][n]["test"]["mean"]) for n in names]
    lines.append("| **pretrained − random init** | " + " | ".join(f"**{d:+.2f}**" for d in diffs)
                 + f" | **{100 * (models[pretrained]['average'] - models[baseline]['average']):+.2f}** |")
    clear, noisy = [], []
    for c, n in zip(columns, names):
        ours, theirs = models[pretrained]["tasks"][n]["test"], models[baseline]["tasks"][n]["test"]
        (clear if beyond_seed_noise(ours, theirs) else noisy).append(c)
    lines += ["", f"Differences larger than the larger standard deviation of the two rows: {', '.join(clear) or 'none'}; "
                  f"within seed noise: {', '.join(noisy) or 'none'}."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_block("quality.py", "real data", text, "## Quality check: pretraining transfers (`bench/quality.py`)",
                    "A tiny encoder pretrained by `hebrew-lm pretrain` on this CPU on `../shared/data/hebrew_raw_text` "
                    "plus the embedded classical texts (no Hebrew Treebank text: it is NEMO's), against the same "
                    "architecture from random initialization, fine-tuned on NEMO, BMC and SMCD under the same grid and "
                    "seeds. Commands: `hebrew-lm run bench/configs/quality.yaml`, then `python bench/quality.py --write`.")


if __name__ == "__main__":
    main()
