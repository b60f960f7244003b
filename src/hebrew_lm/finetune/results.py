"""The results table in the paper's layout (rows = models, columns = tasks and their average), as
Markdown, CSV, JSON and a PNG chart, and the error analysis as Markdown and JSON."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from hebrew_lm.runs import atomic_write_bytes, atomic_write_json, atomic_write_text

METRIC = {"ner": "entity micro F1 (seqeval, strict IOBES)", "classification": "macro F1"}


# NER test metrics beside the headline: NEMO's script's mention F1, and both decodings' strict F1
NER_EXTRA = ("mention_f1", "argmax_f1", "viterbi_f1")


def _ms(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def beyond_seed_noise(ours: dict[str, float], baseline: dict[str, float]) -> bool:
    """Whether two mean ± std scores differ by more than the larger of their standard deviations over
    seeds; a smaller difference is read as noise."""
    return abs(ours["mean"] - baseline["mean"]) > max(ours["std"], baseline["std"])


def fmt(stat: dict[str, float] | None) -> str:
    if stat is None:
        return "–"
    return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def summarize(cells: list[dict]) -> dict[str, Any]:
    """One model on one task: test scores pooled over seeds (and over BMC's splits)."""
    kind = cells[0]["kind"]
    summary: dict[str, Any] = {
        "metric": METRIC[kind],
        "test": _ms([s for c in cells for s in c["test_scores"]]),
        "dev": _ms([s for c in cells for s in c["dev_scores"]]),
        "runs": [{k: c[k] for k in ("task", "learning_rate", "batch_size", "max_seq_len", "epochs",
                                    "windowed_or_truncated", "sizes")}
                 | {"test": _ms(c["test_scores"]), "dev": _ms(c["dev_scores"])}
                 | {k: _ms([m[k] for m in c["test_metrics"]]) for k in ("precision", "recall", "accuracy", *NER_EXTRA)
                    if all(k in m for m in c["test_metrics"])} for c in cells],
    }
    if kind == "ner":
        summary["precision"] = _ms([m["precision"] for c in cells for m in c["test_metrics"]])
        summary["recall"] = _ms([m["recall"] for c in cells for m in c["test_metrics"]])
        for k in NER_EXTRA:
            if all(k in m for c in cells for m in c["test_metrics"]):
                summary[k] = _ms([m[k] for c in cells for m in c["test_metrics"]])
        types = sorted({t for c in cells for m in c["test_metrics"] for t in m["per_type"]})
        summary["per_type"] = {
            t: {k: statistics.fmean(m["per_type"][t][k] for c in cells for m in c["test_metrics"] if t in m["per_type"])
                for k in ("precision", "recall", "f1", "support")} for t in types}
    else:
        summary["accuracy"] = _ms([m["accuracy"] for c in cells for m in c["test_metrics"]])
    return summary


def write_results(config, out: Path, rows: list[dict], tasks: list, cells: dict[str, dict[str, list[dict]]]) -> dict:
    task_names = list(dict.fromkeys(t.task for t in tasks))
    titles = {t.task: t.title for t in tasks}
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        per_task = {name: summarize(cells[row["name"]][name]) for name in task_names}
        average = statistics.fmean(per_task[n]["test"]["mean"] for n in task_names)
        table[row["name"]] = {"tasks": per_task, "average": average, "random_init": row["random_init"],
                              "model_dir": row["dir"]}
    results = {
        "columns": [titles[n] for n in task_names], "task_names": task_names, "models": table,
        "grid": {"learning_rates": config.learning_rates, "batch_sizes": config.batch_sizes, "seeds": config.seeds,
                 "max_epochs": config.max_epochs, "patience": config.patience},
        "licenses": {t.task: t.license for t in tasks if t.license},
        "notes": {t.name: t.data.notes for t in tasks if t.data.notes},
    }
    atomic_write_text(out / "results.md", results_markdown(results))
    atomic_write_text(out / "results.csv", results_csv(results))
    plot_results(results, out / "results.png")
    errors = {name: {t: [c["errors"] | {"task": c["task"]} for c in cells[name][t]] for t in task_names}
              for name in table}
    atomic_write_json(out / "errors.json", errors)
    atomic_write_text(out / "errors.md", errors_markdown(errors, config.error_examples))
    return results


def results_markdown(results: dict) -> str:
    names = results["task_names"]
    lines = ["# Fine-tuning results", "",
             "Test scores x 100, mean ± std over seeds (BMC: over seeds and its three splits); hyperparameters "
             "chosen on dev only. " + "; ".join(f"{c}: {results['models'][next(iter(results['models']))]['tasks'][n]['metric']}"
                                                for c, n in zip(results["columns"], names)) + ".", "",
             "| Model | " + " | ".join(results["columns"]) + " | Average |",
             "|---|" + "---:|" * (len(names) + 1)]
    for model, row in results["models"].items():
        cells = [fmt(row["tasks"][n]["test"]) for n in names]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {100 * row['average']:.2f} |")
    lines += ["", "## Per task", "",
              "| Model | Task | lr | batch | max len | best epochs | dev | test | more |", "|---|---|---:|---:|---:|---|---:|---:|---|"]
    for model, row in results["models"].items():
        for n, title in zip(names, results["columns"]):
            t = row["tasks"][n]
            for r in t["runs"]:
                more = ""
                if "accuracy" in r:
                    more = f"accuracy {fmt(r['accuracy'])}"
                elif "precision" in r:
                    more = f"P {fmt(r['precision'])} R {fmt(r['recall'])}"
                    if "mention_f1" in r:
                        more += f"; mention F1 (NEMO's script) {fmt(r['mention_f1'])}"
                    if "viterbi_f1" in r:
                        more += f"; F1 argmax {fmt(r['argmax_f1'])} / Viterbi {fmt(r['viterbi_f1'])}"
                cut = r["windowed_or_truncated"]
                if any(cut.values()):
                    more += f"; over max len (train/dev/test): {cut['train']}/{cut['dev']}/{cut['test']}"
                lines.append(f"| {model} | {r['task']} | {r['learning_rate']:g} | {r['batch_size']} | {r['max_seq_len']} | "
                             f"{', '.join(map(str, r['epochs']))} | {fmt(r['dev'])} | {fmt(r['test'])} | {more} |")
    for model, row in results["models"].items():
        for n, title in zip(names, results["columns"]):
            per_type = row["tasks"][n].get("per_type")
            if per_type:
                lines += ["", f"### {model} on {title}: per entity type (test, mean over runs)", "",
                          "| Type | P | R | F1 | support |", "|---|---:|---:|---:|---:|"]
                lines += [f"| {k} | {100 * v['precision']:.1f} | {100 * v['recall']:.1f} | {100 * v['f1']:.1f} | {v['support']:.0f} |"
                          for k, v in per_type.items()]
    g = results["grid"]
    lines += ["", f"Grid: learning rates {g['learning_rates']} x batch sizes {g['batch_sizes']}, seeds {g['seeds']}, "
              f"at most {g['max_epochs']} epochs, early stopping with patience {g['patience']}."]
    if results["licenses"]:
        lines += ["", "Data licenses: " + "; ".join(results["licenses"].values()) + "."]
    for task, notes in results["notes"].items():
        lines.append(f"\nNotes on {task}: " + "; ".join(notes) + ".")
    return "\n".join(lines) + "\n"


def results_csv(results: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", *[f"{c} {k}" for c in results["columns"] for k in ("mean", "std")], "average"])
    for model, row in results["models"].items():
        w.writerow([model, *[f"{row['tasks'][n]['test'][k]:.4f}" for n in results["task_names"] for k in ("mean", "std")],
                    f"{row['average']:.4f}"])
    return buf.getvalue()


def plot_results(results: dict, path: Path) -> None:
    from hebrew_lm.plots import pyplot

    plt = pyplot()
    import numpy as np

    names, columns = results["task_names"], [*results["columns"], "Average"]
    models = list(results["models"])
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(columns), 3.8))
    for i, model in enumerate(models):
        row = results["models"][model]
        means = [100 * row["tasks"][n]["test"]["mean"] for n in names] + [100 * row["average"]]
        stds = [100 * row["tasks"][n]["test"]["std"] for n in names] + [0.0]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=model,
                      hatch="//" if row["random_init"] else None, edgecolor="white")
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(x, columns)
    ax.set_ylabel("test score x 100")
    ax.set_ylim(0, 105)
    ax.set_title("Fine-tuning results (mean ± std over seeds)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def errors_markdown(errors: dict, max_examples: int) -> str:
    lines = ["# Error analysis", "",
             "Each model's best run (by dev) on each test set. NER: every gold and predicted entity in one category "
             "(correct; type = right span, wrong type; boundary = overlapping span, right type; boundary+type; missed; "
             "spurious). Sentiment: confusion matrix, and how often errors contain a negation cue (לא, אין, אל, בלי, ...)."]
    show = min(5, max_examples)
    for model, per_task in errors.items():
        for task, runs in per_task.items():
            for e in runs:
                lines += ["", f"## {model} on {e['task']}", ""]
                if "counts" in e:
                    c = e["counts"]
                    lines += ["| " + " | ".join(c) + " |", "|" + "---:|" * len(c), "| " + " | ".join(map(str, c.values())) + " |"]
                    for kind, examples in e["examples"].items():
                        if examples:
                            lines.append(f"\n{kind}:")
                            lines += [f"- gold {x['gold'] or '–'} / predicted {x['predicted'] or '–'} in: {x['sentence'][:160]}"
                                      for x in examples[:show]]
                else:
                    n = e["negation"]
                    lines += [f"{e['errors']} errors; {n['errors_with_negation']} of them ({100 * n['share_of_errors']:.0f}%) "
                              f"contain a negation cue, against {100 * n['share_of_all']:.0f}% of all test texts "
                              f"(error rate {100 * n['error_rate_with_negation']:.1f}% with a cue, "
                              f"{100 * n['error_rate_without_negation']:.1f}% without)."]
                    lines += [f"\n{e['errors'] and 'examples:' or ''}"]
                    lines += [f"- gold {x['gold']}, predicted {x['predicted']}: {x['text'][:160]}" for x in e["examples"][:show]]
                m = e["confusion"]
                lines += ["", "Confusion (rows gold, columns predicted):", "",
                          "| | " + " | ".join(m["labels"]) + " |", "|---|" + "---:|" * len(m["labels"])]
                lines += [f"| {g} | " + " | ".join(map(str, r)) + " |" for g, r in zip(m["labels"], m["matrix"])]
    return "\n".join(lines) + "\n"


def plot_learning_curves(curves: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> None:
    """Test score against training-set size (log scale), one panel per task, one line per model."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    tasks = list(next(iter(curves.values())))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model, per_task in curves.items():
            points = per_task[task]
            xs = [p["train_size"] for p in points]
            ax.errorbar(xs, [100 * p["test"][0] for p in points], yerr=[100 * p["test"][1] for p in points],
                        marker="o", capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xlabel("training examples")
        ax.set_ylabel("test score x 100")
        ax.set_title(task)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
