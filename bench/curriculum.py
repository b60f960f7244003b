"""The curriculum ablations as one command: from the same base, seed set and step budget, the phases easy
to hard, reversed (hard to easy), shuffled (no phases), and easy to hard without anchoring.

    hebrew-lm run configs/tiny-decoder.yaml --until hebrew_corpus   # base, English and Hebrew corpora
    python bench/curriculum.py --steps 30 --seeds 0 1 --write        # the table in BENCHMARKS.md

Each row is `hebrew-lm cpt` with configs/tiny-decoder.yaml's cpt section and one change. The seed moves
the order of batches (the base's weights are the same), so the spread over seeds is the noise a
difference must exceed. Columns: Hebrew validation loss at the end (the whole validation split), the
anchor language's (English) validation loss and its rise over the base's (forgetting), and with
`--eval` the few-shot averages of the eval stage (the preset's eval section, the embedded tasks) on
each run's model: Hebrew tasks and English (en_cloze, forgetting in a task score).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks_md import write_block

from hebrew_lm.finetune.results import beyond_seed_noise

VARIANTS = [("easy to hard", {}), ("hard to easy (reversed)", {"curriculum": "reversed"}),
            ("shuffled (no phases)", {"curriculum": "shuffled"}), ("easy to hard, no anchoring", {"anchor_share": 0.0})]


def stat(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="configs/tiny-decoder.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval", action="store_true", help="score each run's model on the embedded few-shot tasks")
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()

    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.cpt import stage

    preset = load_preset(args.preset)
    base = stage_config(preset, "cpt")
    for folder in (base.init_from, base.corpus_dir, base.anchor_corpus_dir):
        if not (Path(folder) / "_SUCCESS").is_file() and not (Path(folder) / "config.json").is_file():
            raise SystemExit(f"{folder} is missing: run `hebrew-lm run {args.preset} --until hebrew_corpus` first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, change in VARIANTS:
            runs = []
            for seed in args.seeds:
                config = type(base)(**{**vars(base), **change, "seed": seed, "max_steps": args.steps,
                                       "warmup_steps": max(1, args.steps // 10), "eval_every": args.steps,
                                       "checkpoint_every": args.steps, "output_dir": str(Path(tmp) / f"{name}-{seed}")})
                stage.run(config)
                stats = json.loads((Path(config.output_dir) / "stats.json").read_text())
                if args.eval:
                    stats["few_shot"] = few_shot(preset, Path(config.output_dir), Path(tmp) / f"eval-{name}-{seed}")
                runs.append(stats)
            rows.append((name, runs))
    first = rows[0][1]
    hebrew0 = stat([r["final_val_loss"] for r in first])
    table = [f"`{args.preset}`'s cpt section: {args.steps} steps of {base.global_batch_size} pieces (at most "
             f"{base.max_seq_len} tokens), seeds {args.seeds}; base `{base.init_from}` (Hebrew loss "
             f"{first[0]['base_val_loss']:.3f}, English {first[0]['base_anchor_loss']:.3f} before). Mean ± std over seeds; "
             "a difference is called real only beyond the larger std.", "",
             "| curriculum | Hebrew validation loss | English validation loss | forgetting (rise) | Hebrew vs easy to hard |"
             + (" few-shot Hebrew average | few-shot English average |" if args.eval else ""),
             "|---|---:|---:|---:|---|" + ("---:|---:|" if args.eval else "")]
    for name, runs in rows:
        hebrew = stat([r["final_val_loss"] for r in runs])
        english = stat([r["final_anchor_loss"] for r in runs])
        forgetting = stat([r["forgetting"] for r in runs])
        diff = hebrew["mean"] - hebrew0["mean"]
        verdict = "-" if runs is first else f"{diff:+.3f}, " + ("beyond seed noise" if beyond_seed_noise(hebrew, hebrew0)
                                                               else "within seed noise")
        line = (f"| {name} | {hebrew['mean']:.3f} ± {hebrew['std']:.3f} | {english['mean']:.3f} ± {english['std']:.3f} "
                f"| {forgetting['mean']:+.3f} ± {forgetting['std']:.3f} | {verdict} |")
        if args.eval:
            for lang in ("Hebrew", "English"):
                score = stat([100 * r["few_shot"][lang] for r in runs])
                line += f" {score['mean']:.1f} ± {score['std']:.1f} |"
        table.append(line)
    text = "\n".join(table)
    print(text)
    if args.write:
        write_block("curriculum.py", "tiny", text, "## Curriculum ablations (`bench/curriculum.py`)",
                    "Easy to hard against reversed, shuffled and no anchoring, from the same base and budget. "
                    "Command: `hebrew-lm run configs/tiny-decoder.yaml --until hebrew_corpus`, then "
                    "`python bench/curriculum.py --steps 30 --seeds 0 1 --write`.")


def few_shot(preset: dict, cpt_dir: Path, out: Path) -> dict[str, float]:
    """The Hebrew and English few-shot averages of a cpt run's model (the preset's eval section otherwise)."""
    from hebrew_lm.presets import stage_config
    from hebrew_lm.evaluate.stage import run

    config = stage_config(preset, "eval")
    config = type(config)(**{**vars(config), "models": [str(cpt_dir / "model")], "model_names": ["cpt"],
                             "output_dir": str(out)})
    table = json.loads((run(config) / "results.json").read_text())
    return table["models"]["cpt"]["averages"]


if __name__ == "__main__":
    main()
