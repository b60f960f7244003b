"""The evaluation stage: causal LMs side by side on few-shot tasks, with lm-evaluation-harness as the engine.

    hebrew-lm eval configs/tiny-decoder.yaml                      # the base against the CPT model
    hebrew-lm eval --models runs/x/cpt/model other/model --output_dir runs/eval --hebrew_corpus_dir ...

This stage writes the task files (the embedded tasks of `hebrew_lm.evaluate.tasks`, the public sets
of `hebrew_lm.evaluate.public` read from `data_dir`, plus any task YAMLs in `task_dirs`), checks them
and the models before anything loads, counts the scored items the models' training corpora contain
(n-gram overlap), runs `lm_eval.simple_evaluate` on each model, and turns its output into one table.
Running `lm_eval --include_path OUTPUT/tasks` by hand gives the same numbers (tested; for a tokenizer that
adds BOS, the bits-per-byte tasks with `add_bos_token=False`, as the stage runs them: docs/eval.md).

Output folder:
    tasks/                         the task YAMLs and their JSONL files (shots and scored items apart)
    results.json, results.md, results.csv, results.png   models x tasks, mean ± stderr, averages
    samples/<model>/<task>.jsonl   every scored item with the model's answer (error analysis)
    model-index/<model>.yaml       the scores as a Hugging Face card's `model-index` (for the README front matter)
    stats.json, config.yaml, _SUCCESS
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from hebrew_lm.evaluate.metrics import normalize_tokens
from hebrew_lm.evaluate.checks import check_continuations, check_model, check_task
from hebrew_lm.evaluate.public import PUBLIC, build_public_task, read_jsonl
from hebrew_lm.evaluate.tasks import EMBEDDED, LONG_CONTEXT, LOWER_IS_BETTER, build_embedded_tasks, build_long_context, \
    load_task_yaml
from hebrew_lm.runs import atomic_write_json, atomic_write_text, check_finished, claim_output_dir, clear_owned_dir, \
    dump_yaml, fingerprint, mark_success, safe_component, sha256_file

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 2  # 2: bits per byte without a doubled BOS (evaluate_model)


def model_names(models: list[Path], given: list[str]) -> list[str]:
    """One row name per model, each distinct (also as a folder name): the given ones, or from the path (the
    folder's name, its parent's for a stage's `model/`), with as many parent folders as tell them apart."""
    if given:
        folders = [safe_component(n, "eval: model name") for n in given]
        if len(set(folders)) < len(folders):
            raise ValueError(f"eval.model_names: each model needs its own name, got {given}")
        return list(given)
    parts = [m.resolve().parts[:-1] if m.name == "model" else m.resolve().parts for m in models]
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len({safe_component(n, "eval: model name") for n in names}) == len(names):
            return names
    raise ValueError(f"eval.models: the same folder given twice ({[str(m) for m in models]})")


def collect_tasks(c, tasks_dir: Path) -> tuple[list[str], dict[str, Path]]:
    """Write the embedded and public tasks into `tasks_dir`; return the task names and every YAML by task name."""
    tasks: list[str] = []
    named = [t for t in c.tasks if t in EMBEDDED]  # one embedded task by its name (he_sentiment), not the whole set
    if "embedded" in c.tasks or any(t not in LONG_CONTEXT for t in named):
        built = build_embedded_tasks(tasks_dir, Path(c.hebrew_corpus_dir) if c.hebrew_corpus_dir else None,
                                     Path(c.english_corpus_dir) if c.english_corpus_dir else None)
        tasks += [t for t in built if "embedded" in c.tasks or t in named]
    if ("long_context" in c.tasks or any(t in LONG_CONTEXT for t in named)) and c.hebrew_corpus_dir:
        built = build_long_context(tasks_dir, Path(c.hebrew_corpus_dir), c.context_words, c.needle_depths)
        tasks += [t for t in built if "long_context" in c.tasks or t in named]
    for name in c.tasks:
        if name in PUBLIC:
            tasks.append(build_public_task(tasks_dir, name, Path(c.data_dir)))
    specs = {}
    for folder in [tasks_dir, *map(Path, c.task_dirs)]:
        for path in sorted(folder.glob("*.yaml")):
            specs.setdefault(load_task_yaml(path).get("task"), path)
    tasks += [t for t in c.tasks if t not in ("embedded", "long_context") and t not in tasks]
    unknown = [t for t in tasks if t not in specs]
    if unknown:
        raise ValueError(f"eval.tasks: no task YAML for {unknown} in {[str(tasks_dir), *c.task_dirs]}; "
                         f"built-in public tasks: {', '.join(PUBLIC)}; embedded tasks: {', '.join(EMBEDDED)} (each "
                         "made only where its corpus or package is there: docs/eval.md)")
    return tasks, specs


def run(config, force: bool = False) -> Path:
    """Evaluate every model on every task into `config.output_dir` and return that folder."""
    c = config
    out = Path(c.output_dir)
    models = [Path(m) for m in c.models]
    names = model_names(models, c.model_names)
    for m in models:
        check_model(m)
    weights = {str(m): [sha256_file(w) for w in sorted(m.glob("*.safetensors"))] for m in models}
    fp = fingerprint({"version": FORMAT_VERSION, "config": {k: v for k, v in vars(c).items() if k != "output_dir"},
                      "weights": weights})
    if check_finished(out, fp, "eval", force):
        return out
    claim_output_dir(out, "eval")
    clear_owned_dir(out, "eval", "evaluating again")
    tasks_dir = out / "tasks"
    tasks, specs = collect_tasks(c, tasks_dir)
    kinds = {t: check_task(specs[t]) for t in tasks}  # every file checked before any model loads
    if c.max_length:
        from transformers import AutoTokenizer

        for model in models:
            tokenizer = AutoTokenizer.from_pretrained(str(model))
            for t in tasks:
                if t not in LONG_CONTEXT:  # those run with their whole context, never cut to max_length
                    check_continuations(kinds[t], tokenizer, c.max_length, model)
    contamination = contamination_report(kinds, [Path(d) for d in c.train_corpus_dirs], c.contamination_ngram)

    from lm_eval.tasks import TaskManager

    # every task has its YAML in our folders (collect_tasks refuses others), so lm-eval's own 14,000 task
    # files need no indexing: 9 s saved on every run
    manager = TaskManager(include_path=sorted({str(specs[t].parent) for t in tasks}), include_defaults=False)
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    long_scores: dict[str, dict[str, Any]] = {}
    short, long = [t for t in tasks if t not in LONG_CONTEXT], [t for t in tasks if t in LONG_CONTEXT]
    for model, name in zip(models, names):
        log.info("eval: %s on %s", name, ", ".join(tasks))
        started = time.perf_counter()
        output = evaluate_model(c, model, manager, short, long,
                                [t for t in tasks if kinds[t].get("output_type") == "loglikelihood_rolling"])
        # (lm-eval's default seeds, the same as its CLI's: the numbers match `lm_eval --include_path` runs)
        seconds[name] = round(time.perf_counter() - started, 1)
        row = score_row(output, tasks, kinds, out / "samples" / safe_component(name, "model name"))
        results[name] = row
        if long:
            long_scores[name] = long_context_scores(output["samples"])
        (out / "model-index").mkdir(exist_ok=True)
        atomic_write_text(out / "model-index" / f"{safe_component(name, 'model name')}.yaml",
                          model_index(name, row))
    table = summarize(results, tasks, {t: task_language(t, kinds[t]) for t in tasks})
    table["contamination"] = contamination
    atomic_write_json(out / "results.json", table)
    atomic_write_text(out / "results.md", render_markdown(table))
    atomic_write_text(out / "results.csv", render_csv(table))
    plot_results(table, out / "results.png")
    if long_scores:
        atomic_write_json(out / "long_context.json", long_scores)
        atomic_write_text(out / "long_context.md", long_context_markdown(long_scores))
        plot_long_context(long_scores, out / "long_context.png")
    atomic_write_json(out / "stats.json", {"models": names, "tasks": tasks, "seconds": seconds,
                                           "averages": {m: table["models"][m]["averages"] for m in names},
                                           "contamination": contamination})
    atomic_write_text(out / "config.yaml", dump_yaml(vars(c)))
    mark_success(out, fp, stage="eval")
    log.info("eval: -> %s", out / "results.md")
    return out


def evaluate_model(c, model: Path, manager, short: list[str], long: list[str],
                   rolling: list[str]) -> dict[str, dict[str, Any]]:
    """lm-eval's output for one model on every task: the short ones cut to max_length, the long-context
    ones with their whole context, the `loglikelihood_rolling` ones (bits per byte) scored after the
    tokenizer's BOS once (the same loaded model each time)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    # a model object, not lm-eval's "key=value,..." string, which breaks on paths with commas or spaces
    cut = {"max_length": c.max_length} if c.max_length else {}
    lm = HFLM(pretrained=str(model), dtype="float32", batch_size=c.batch_size, device=c.device, **cut)
    again = lambda **kw: HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=c.batch_size,  # noqa: E731
                              device=c.device, **kw)
    # lm-eval opens a rolling text with the BOS token and then encodes the text as the tokenizer does: one
    # that adds BOS itself (Gemma's) makes it score `<bos> <bos> text`, and the second <bos> costs the
    # base 18 nats per document (lm-evaluation-harness issue 3333). The few-shot tasks keep the tokenizer's BOS.
    runs = [([t for t in short if t not in rolling], lambda: lm), (long, again),
            ([t for t in short if t in rolling], lambda: again(add_bos_token=False, **cut))]
    output: dict[str, dict[str, Any]] = {"results": {}, "n-samples": {}, "configs": {}, "samples": {}}
    for group, make_lm in runs:
        if group:
            got = lm_eval.simple_evaluate(model=make_lm(), tasks=group, task_manager=manager, log_samples=True,
                                          limit=c.limit or None)
            for key in output:
                output[key].update(got[key])
    return output


def score_row(output: dict[str, dict[str, Any]], tasks: list[str], kinds: dict[str, dict[str, Any]],
              samples: Path) -> dict[str, dict[str, Any]]:
    """One model's row of the table (each task's primary metric, its stderr, items and shots), and its
    per-sample logs written into `samples`."""
    row = {}
    for task in tasks:
        metric = primary_metric(kinds[task])
        got = output["results"][task]
        key = next(k for k in got if k.split(",")[0] == metric)
        stderr = got.get(key.replace(",", "_stderr,", 1))
        scale = 100.0 if metric in ("chrf", "chrf++", "bleu", "ter") else 1.0  # sacrebleu's scores are x 100
        row[task] = {"metric": metric, "value": float(got[key]) / scale,
                     "stderr": float(stderr) / scale if isinstance(stderr, (int, float)) else None,
                     "n": output["n-samples"][task]["effective"],
                     "num_fewshot": output["configs"][task].get("num_fewshot"),
                     "other_metrics": {k.split(",")[0]: float(v) for k, v in got.items() if "," in k
                                       and "_stderr" not in k and k.split(",")[0] != metric
                                       and isinstance(v, (int, float))}}  # HeQ: exact match and TLNLS
        samples.mkdir(parents=True, exist_ok=True)
        atomic_write_text(samples / f"{task}.jsonl", "".join(
            json.dumps({"doc": s["doc"], "target": s["target"], "resps": s["filtered_resps"],
                        **{k: s[k] for k in (metric,) if k in s}}, ensure_ascii=False, default=str) + "\n"
            for s in output["samples"][task]))
    return row


def primary_metric(task: dict[str, Any]) -> str:
    """The reported metric: the task's own (metadata.metric), else the first of its metric_list."""
    metric = (task.get("metadata") or {}).get("metric")
    return metric or (task.get("metric_list") or [{"metric": "acc"}])[0]["metric"]


def task_language(name: str, task: dict[str, Any]) -> str:
    """Hebrew or English: the task's metadata.language, else its name (en_* or *_en is English)."""
    language = (task.get("metadata") or {}).get("language")
    return language or ("English" if name.startswith("en_") or name.endswith("_en") else "Hebrew")


def item_text(row: dict[str, Any]) -> str:
    """What a scored item shows a model: its query and its gold answer."""
    gold = row["choices"][row["gold"]] if "choices" in row and isinstance(row.get("gold"), int) else \
        (row.get("answers") or [""])[0]
    return f"{row.get('query', '')} {gold}"


def ngrams(text: str, n: int) -> set[int]:
    """Hashes of the n-word sequences of `text`, normalized as HeQ's answers are."""
    words = normalize_tokens(text)
    return {hash(tuple(words[i: i + n])) for i in range(len(words) - n + 1)}


def contamination_report(kinds: dict[str, dict[str, Any]], corpora: list[Path], n: int) -> dict[str, Any]:
    """The share of each task's scored items sharing an n-word sequence with the training split of `corpora`
    (the model's run's corpus stages, when known): a contaminated item may be remembered, not solved."""
    from hebrew_lm.corpus.shards import read_texts

    corpora = [d for d in corpora if (d / "manifest.json").is_file()]
    items: dict[str, list[set[int]]] = {}
    for name, task in kinds.items():
        test = ((task.get("dataset_kwargs") or {}).get("data_files") or {}).get(task.get("test_split", "test"))
        if test:
            items[name] = [ngrams(item_text(row), n) for _, row in read_jsonl(Path(test), ())]
    wanted = set().union(*(g for rows in items.values() for g in rows)) if items else set()
    found: set[int] = set()
    for corpus in corpora:
        for text in read_texts(corpus, "train"):
            found.update(ngrams(text, n) & wanted)
    report = {"ngram": n, "corpora": [str(d) for d in corpora], "tasks": {}}
    for name, rows in items.items():
        hit = sum(1 for g in rows if g & found)
        report["tasks"][name] = {"items": len(rows), "contaminated": hit,
                                 "share": round(hit / len(rows), 4) if rows else 0.0}
    if not corpora:
        report["note"] = "no training corpus given (eval.train_corpus_dirs): not checked"
    return report


def model_index(name: str, row: dict[str, Any]) -> str:
    """The Hugging Face model card's `model-index` block for one model's scores, ready for its README front matter."""
    results = [{"task": {"type": "text-generation"},
                "dataset": {"name": task, "type": task},
                "metrics": [{"type": r["metric"], "value": round((100 if is_score(r) else 1) * float(r["value"]), 3),
                             "name": f"{r['metric']} ({r['num_fewshot']}-shot)"}],
                "source": {"name": "hebrew-lm eval (lm-evaluation-harness 0.4.13)", "url": "https://github.com/EleutherAI/lm-evaluation-harness"}}
               for task, r in row.items()]
    return yaml.safe_dump({"model-index": [{"name": name, "results": results}]}, allow_unicode=True, sort_keys=False)


def is_score(r: dict[str, Any]) -> bool:
    """A higher-is-better score in [0, 1] (accuracy, F1, chrF); bits per byte is neither, and is never averaged with them."""
    return r["metric"] not in LOWER_IS_BETTER


def cell(r: dict[str, Any]) -> str:
    """One table cell: a score x 100 ± its standard error, or bits per byte as it is."""
    if not is_score(r):
        return f"{r['value']:.3f}"
    return f"{100 * r['value']:.1f} ± {100 * (r['stderr'] or 0):.1f}"


def summarize(results: dict[str, dict[str, Any]], tasks: list[str], languages: dict[str, str]) -> dict[str, Any]:
    models = {}
    for name, row in results.items():
        averages = {}
        for lang in ("Hebrew", "English"):
            values = [row[t]["value"] for t in tasks if languages[t] == lang and is_score(row[t])]
            averages[lang] = sum(values) / len(values) if values else None
        models[name] = {"tasks": row, "averages": averages}
    return {"tasks": tasks, "languages": languages, "models": models}


def render_markdown(table: dict[str, Any]) -> str:
    tasks = table["tasks"]
    first = next(iter(table["models"].values()))["tasks"]
    header = [f"{t} ({first[t]['metric']}, {first[t]['num_fewshot']}-shot, n={first[t]['n']})" if is_score(first[t])
              else f"{t} (bits per byte, lower is better, n={first[t]['n']})" for t in tasks]
    lines = ["| model | " + " | ".join(header) + " | Hebrew average | English average |",
             "|---|" + "---:|" * (len(tasks) + 2)]
    for name, row in table["models"].items():
        cells = [cell(row["tasks"][t]) for t in tasks]
        avg = [f"{100 * v:.1f}" if v is not None else "-" for v in row["averages"].values()]
        lines.append(f"| {name} | " + " | ".join(cells + avg) + " |")
    text = ("Scores x 100, mean ± standard error from lm-evaluation-harness; bits per byte as they are (lower is "
            "better, never in the averages). Tasks: " +
            ", ".join(f"{t} ({table['languages'][t]})" for t in tasks) + ".\n\n" + "\n".join(lines) + "\n")
    return text + contamination_markdown(table.get("contamination"))


def contamination_markdown(report: dict[str, Any] | None) -> str:
    if not report:
        return ""
    if not report["corpora"]:
        return "\nContamination: " + report.get("note", "not checked") + ".\n"
    rows = [f"| {t} | {r['contaminated']} of {r['items']} | {100 * r['share']:.1f}% |" for t, r in report["tasks"].items()]
    return (f"\nContamination: scored items sharing a {report['ngram']}-word sequence with the train split of "
            f"{', '.join(report['corpora'])}.\n\n| task | items | share |\n|---|---:|---:|\n" + "\n".join(rows) + "\n")


def render_csv(table: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "task", "language", "metric", "value", "stderr", "n", "num_fewshot"])
    for name, row in table["models"].items():
        for t, r in row["tasks"].items():
            writer.writerow([name, t, table["languages"][t], r["metric"], r["value"], r["stderr"], r["n"], r["num_fewshot"]])
    return buffer.getvalue()


def plot_results(table: dict[str, Any], path: Path) -> None:
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    models = list(table["models"])
    first = table["models"][models[0]]["tasks"]
    scores = [t for t in table["tasks"] if is_score(first[t])]
    bpb = [t for t in table["tasks"] if not is_score(first[t])]
    panels = [(scores, 100, "score x 100")] * bool(scores) + [(bpb, 1, "bits per byte (lower is better)")] * bool(bpb)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5, 1.4 * len(table["tasks"]) + 2), 3.4), squeeze=False,
                             gridspec_kw={"width_ratios": [max(1, len(t)) for t, _, _ in panels]})
    width = 0.8 / max(1, len(models))
    for ax, (tasks, scale, label) in zip(axes[0], panels):
        for i, name in enumerate(models):
            row = table["models"][name]["tasks"]
            xs = [j + i * width for j in range(len(tasks))]
            ax.bar(xs, [scale * row[t]["value"] for t in tasks], width,
                   yerr=[scale * (row[t]["stderr"] or 0) for t in tasks], label=name, capsize=2)
        ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(tasks))], tasks, fontsize=8)
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def long_context_scores(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """he_needle's exact match by context length (words) and depth, he_longdoc's accuracy by length, from the
    per-item samples (each item records its `words` and `depth`)."""
    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    scores: dict[str, Any] = {}
    needle: dict[int, dict[float, list[float]]] = {}
    for s in samples.get("he_needle", []):
        needle.setdefault(int(s["doc"]["words"]), {}).setdefault(float(s["doc"]["depth"]), []).append(float(s["exact_match"]))
    if needle:
        scores["needle"] = {str(w): {str(d): mean(v) for d, v in sorted(row.items())} for w, row in sorted(needle.items())}
    for task, key in (("he_longdoc", "longdoc"), ("he_longdoc_blind", "longdoc_blind")):
        by_length: dict[int, list[float]] = {}
        for s in samples.get(task, []):
            by_length.setdefault(int(s["doc"]["words"]), []).append(float(s["acc"]))
        if by_length:
            scores[key] = {str(w): mean(v) for w, v in sorted(by_length.items())}
    # What the document does to the answer's log-likelihood beyond what it does to the other choices (nats): a
    # finer reading than accuracy, whose choices a small model picks by their length whatever the document says.
    gains: dict[int, list[float]] = {}
    for seen, blind in zip(samples.get("he_longdoc", []), samples.get("he_longdoc_blind", [])):
        delta = [loglikelihood(a) - loglikelihood(b) for a, b in zip(seen["resps"], blind["resps"])]
        gold = int(seen["doc"]["gold"])
        others = [d for i, d in enumerate(delta) if i != gold]
        gains.setdefault(int(seen["doc"]["words"]), []).append(delta[gold] - mean(others))
    if gains:
        scores["longdoc_gain"] = {str(w): mean(v) for w, v in sorted(gains.items())}
    return scores


def loglikelihood(resp: Any) -> float:
    """The log-likelihood in one of lm-eval's logged multiple-choice responses ([[value, is_greedy]], nested)."""
    while isinstance(resp, (list, tuple)):
        resp = resp[0]
    return float(resp)


def long_context_markdown(scores: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, got in scores.items():
        if "needle" in got:
            depths = list(next(iter(got["needle"].values())))
            lines += [f"he_needle, {name} (exact match x 100, by context length in words and needle depth):", "",
                      "| words | " + " | ".join(f"depth {float(d):.0%}" for d in depths) + " |",
                      "|---|" + "---:|" * len(depths)]
            lines += [f"| {w} | " + " | ".join(f"{100 * row[d]:.0f}" for d in depths) + " |" for w, row in got["needle"].items()]
            lines.append("")
        if "longdoc" in got:
            blind = got.get("longdoc_blind") or {}
            gain = got.get("longdoc_gain") or {}
            lines += [f"he_longdoc, {name} (accuracy x 100 by length in words, with the document / without it; "
                      "chance 25): " + ", ".join(f"{w}: {100 * v:.0f} / {100 * blind.get(w, float('nan')):.0f}"
                                                 for w, v in got["longdoc"].items()), ""]
            if gain:
                lines += [f"he_longdoc, {name}: the document's log-likelihood gain for the answer beyond the other "
                          "choices (nats; above 0: the document is used): " +
                          ", ".join(f"{w}: {v:+.3f}" for w, v in gain.items()), ""]
    return "\n".join(lines)


def plot_long_context(scores: dict[str, dict[str, Any]], path: Path) -> None:
    """One needle heatmap per model (context length x depth, exact match), side by side: the same grid
    before and after a context-extension run."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    models = [m for m in scores if "needle" in scores[m]]
    if not models:
        return
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models) + 1, 3.2), squeeze=False)
    for ax, name in zip(axes[0], models):
        grid = scores[name]["needle"]
        lengths, depths = list(grid), list(next(iter(grid.values())))
        values = [[100 * grid[w][d] for d in depths] for w in lengths]
        image = ax.imshow(values, vmin=0, vmax=100, cmap="viridis", aspect="auto", origin="lower")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color="white" if v < 60 else "black")
        ax.set_xticks(range(len(depths)), [f"{float(d):.0%}" for d in depths], fontsize=7)
        ax.set_yticks(range(len(lengths)), lengths, fontsize=7)
        ax.set_xlabel("needle depth")
        ax.set_title(name, fontsize=9)
    axes[0][0].set_ylabel("context (words)")
    fig.colorbar(image, ax=axes[0].tolist(), label="exact match x 100")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
