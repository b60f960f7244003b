"""`hebrew-lm finetune`: every model x every task, a grid search with early stopping on dev, the
chosen hyperparameters scored on test once, and a results table in the paper's layout.

    OUTPUT/
      trials/<model>/<task>/lr<..>_bs<..>_seed<..>/trial.json   one per trial (a rerun skips finished ones)
      models/<model>/<task>/          the best fine-tuned model per model and task (a Hugging Face folder)
      results.{md,csv,json,png}       rows = models, columns = tasks and their average
      errors.md, errors.json          error analysis of each model's best run on each test set
      encoder_cards/<model>/README.md each hebrew-lm encoder's model card with these results (the
                                      encoder folder itself is an input and is never changed)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from hebrew_lm.config import to_dict
from hebrew_lm.finetune.config import FinetuneConfig
from hebrew_lm.finetune.encode import choose_max_len, sentence_lengths, text_lengths
from hebrew_lm.finetune.metrics import classification_errors, ner_errors
from hebrew_lm.finetune.tasks import LoadedTask, load_task
from hebrew_lm.finetune.trial import Prepared, predict, prepare, run_trial
from hebrew_lm.runs import (atomic_write_json, atomic_write_text, check_finished, claim_output_dir, dump_yaml,
                            fingerprint, mark_success, safe_component, sha256_file)

log = logging.getLogger("hebrew_lm")
FORMAT_VERSION = 1


def slug(name: str) -> str:
    """A model or task name as one folder name under OUTPUT (never `..` or a path)."""
    return safe_component(name, "finetune: the model or task name")


def model_fingerprint(model_dir: Path) -> str:
    """A hash of the model's config and weights: trials of a retrained model are not reused."""
    files = sorted(f for f in model_dir.iterdir() if f.suffix in (".json", ".safetensors", ".bin") and f.is_file())
    return fingerprint([(f.name, sha256_file(f)) for f in files])[:16]


def model_rows(config: FinetuneConfig) -> list[dict[str, Any]]:
    if not config.models:
        raise ValueError("finetune: no models given (set finetune.models, or run_dir so that RUN_DIR/pretrain/model is used)")
    rows = []
    for i, folder in enumerate(config.models):
        path = Path(folder)
        if not (path / "config.json").is_file():
            raise ValueError(f"finetune: {path} is not a Hugging Face model folder (no config.json); "
                             "finish the pretrain stage first, or give a model folder")
        if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
            raise ValueError(f"finetune: {path} has no tokenizer files")
        name = config.model_names[i] if config.model_names else (path.parent.parent.name if path.name == "model" and path.parent.name == "pretrain" else path.name)
        rows.append({"name": name, "dir": str(path), "random_init": False, "fingerprint": model_fingerprint(path)})
    if config.random_init_baseline:
        first = rows[0]
        rows.append({**first, "name": f"{first['name']} (random init)", "random_init": True})
    if len({r["name"] for r in rows}) < len(rows):
        raise ValueError(f"finetune: model names must differ, got {[r['name'] for r in rows]}; set model_names")
    return rows


def position_cap(model_dir: str, tokenizer) -> int:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_dir)
    positions = getattr(cfg, "max_position_embeddings", 512)
    if cfg.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # RoBERTa's position ids start after the padding index
    limit = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else positions
    return int(min(positions, limit))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run(config: FinetuneConfig, force: bool = False) -> Path:
    from transformers import AutoTokenizer

    out = Path(config.output_dir)
    rows = model_rows(config)
    tasks: list[LoadedTask] = [t for spec in config.tasks for t in load_task(spec, config.data_dir, config.repair_tags)]
    fp = fingerprint({"version": FORMAT_VERSION, "config": to_dict(config),
                      "models": [(r["name"], r["fingerprint"], r["random_init"]) for r in rows]})
    if check_finished(out, fp, "finetune", force):
        return out
    claim_output_dir(out, "finetune")
    atomic_write_json(out / "finetune.json", {"stage": "finetune", "fingerprint": fp})
    if config.threads:
        torch.set_num_threads(config.threads)

    n_trials = len(rows) * len(tasks) * (len(config.learning_rates) * len(config.batch_sizes)
                                         + len([f for f in config.train_fractions if f < 1])) * len(config.seeds)
    log.info("finetune: %d models x %d task runs x %d grid points x %d seeds = %d trials", len(rows), len(tasks),
             len(config.learning_rates) * len(config.batch_sizes), len(config.seeds), n_trials)
    started = time.time()
    bar = tqdm(total=n_trials, desc="finetune trials", unit="trial", disable=not log.isEnabledFor(logging.INFO))
    cells: dict[str, dict[str, Any]] = {}
    for row in rows:
        tokenizer = AutoTokenizer.from_pretrained(row["dir"])
        cap = position_cap(row["dir"], tokenizer)
        for task in tasks:
            lengths = (sentence_lengths(tokenizer, task.data.train) if task.kind == "ner"
                       else text_lengths(tokenizer, task.data.train))
            max_len = min(config.max_seq_len, cap) if config.max_seq_len else choose_max_len(lengths, cap)
            prepared = prepare(task, tokenizer, max_len)
            cell = _grid(config, row, task, prepared, tokenizer, out, bar)
            cells.setdefault(row["name"], {}).setdefault(task.task, []).append(cell)
    curves = learning_curves(config, rows, tasks, cells, out, bar) if config.train_fractions else {}
    bar.close()

    from hebrew_lm.finetune.results import plot_learning_curves, write_results

    results = write_results(config, out, rows, tasks, cells)
    if curves:
        results["learning_curves"] = curves
        plot_learning_curves(curves, out / "learning_curves.png")
    from hebrew_lm.finetune.card import encoder_card_with_results

    for row in rows:
        card = None if row["random_init"] else encoder_card_with_results(row["dir"], row["name"], results, tasks)
        if card is not None:  # the encoder folder is an input: its card is rewritten here, not there
            (out / "encoder_cards" / slug(row["name"])).mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "encoder_cards" / slug(row["name"]) / "README.md", card)
            log.info("finetune: %s's model card with these results -> %s", row["dir"],
                     out / "encoder_cards" / slug(row["name"]) / "README.md")
    results["seconds"] = round(time.time() - started, 1)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "config.yaml", dump_yaml(to_dict(config)))
    mark_success(out, fp, stage="finetune")
    log.info("finetune: results -> %s", out / "results.md")
    return out


def train_subset(task: LoadedTask, fraction: float) -> LoadedTask:
    """The task with `fraction` of its training set (at least 8 items): nested, the smaller fractions'
    items are among the larger's, from one seeded shuffle; dev and test unchanged."""
    import random

    order = list(range(len(task.data.train)))
    random.Random(0).shuffle(order)
    keep = sorted(order[: max(8, round(fraction * len(order)))])
    data = dataclasses.replace(task.data, train=[task.data.train[i] for i in keep])
    return dataclasses.replace(task, name=f"{task.name}@{fraction:g}", data=data)


def learning_curves(config: FinetuneConfig, rows: list[dict], tasks: list[LoadedTask], cells: dict, out: Path,
                    bar) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Test scores against training-set size, {model: {task: [{fraction, train_size, test}]}}: each
    fraction fine-tuned with the full-data grid's chosen hyperparameters (chosen on dev, as always) and
    the same seeds, tested once; 100% is the main result."""
    from transformers import AutoTokenizer

    curves: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        tokenizer = AutoTokenizer.from_pretrained(row["dir"])
        for task in tasks:
            cell = next(c for c in cells[row["name"]][task.task] if c["task"] == task.name)
            points = []
            for fraction in sorted(config.train_fractions):
                if fraction >= 1:
                    got = cell
                else:
                    subset = train_subset(task, fraction)
                    one_point = dataclasses.replace(config, learning_rates=[cell["learning_rate"]],
                                                    batch_sizes=[cell["batch_size"]], export_best=False)
                    got = _grid(one_point, row, subset, prepare(subset, tokenizer, cell["max_seq_len"]), tokenizer,
                                out, bar)
                points.append({"fraction": fraction, "train_size": got["sizes"]["train"],
                               "test": _mean_std(got["test_scores"])})
            curves.setdefault(row["name"], {})[task.name] = points
    return curves


def _trial_fingerprint(config: FinetuneConfig, row: dict, task: LoadedTask, max_len: int, lr: float, bs: int,
                       seed: int) -> str:
    return fingerprint({"version": FORMAT_VERSION, "model": row["fingerprint"], "random_init": row["random_init"],
                        "task": task.name, "labels": task.data.labels, "sizes": [len(task.data.train), len(task.data.dev)],
                        "max_len": max_len, "lr": lr, "bs": bs, "seed": seed, "max_epochs": config.max_epochs,
                        "patience": config.patience, "warmup": config.warmup_ratio, "wd": config.weight_decay,
                        "padding": config.padding, "decoding": config.ner_decoding if task.kind == "ner" else None})


def _load_model(path: Path, kind: str):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    auto = AutoModelForTokenClassification if kind == "ner" else AutoModelForSequenceClassification
    return auto.from_pretrained(path)


def _grid(config: FinetuneConfig, row: dict, task: LoadedTask, prepared: Prepared, tokenizer, out: Path, bar) -> dict:
    """All trials of one model on one task run; then the dev-chosen grid point's seeds scored on test."""
    if task.max_epochs:
        config = dataclasses.replace(config, max_epochs=task.max_epochs)

    group = out / "trials" / slug(row["name"]) / slug(task.name)
    trial_fps = {(lr, bs, seed): _trial_fingerprint(config, row, task, prepared.max_len, lr, bs, seed)
                 for lr in config.learning_rates for bs in config.batch_sizes for seed in config.seeds}
    group_fp = fingerprint(list(trial_fps.values()))
    if (group / "cell.json").is_file():
        cell = json.loads((group / "cell.json").read_text(encoding="utf-8"))
        if cell.get("fingerprint") == group_fp:
            bar.update(len(trial_fps))
            return cell
    trials = {key: _trial(config, row, task, prepared, tokenizer, group, key, tfp, bar) for key, tfp in trial_fps.items()}

    # Model selection on dev only: the grid point with the best mean dev score over seeds.
    points = {(lr, bs): [trials[(lr, bs, s)]["dev_score"] for s in config.seeds]
              for lr in config.learning_rates for bs in config.batch_sizes}
    (best_lr, best_bs), dev_scores = max(points.items(), key=lambda kv: statistics.fmean(kv[1]))
    chosen = [trials[(best_lr, best_bs, s)] for s in config.seeds]
    best_seed_record = max(chosen, key=lambda r: r["dev_score"])

    # Test once, for the chosen grid point's seeds only.
    test_metrics, best_pred = [], None
    for record in chosen:
        folder = Path(record["folder"])
        if record.get("tested") is None:
            model = _load_model(folder / "model", task.kind)
            metrics, pred = predict(model, tokenizer, prepared, "test", folder / "tmp", config.ner_decoding)
            record["tested"] = metrics
            record["test_predictions"] = pred
            atomic_write_json(folder / "trial.json", record)
        test_metrics.append(record["tested"])
        if record is best_seed_record:
            best_pred = record["test_predictions"]
    test_scores = [m["score"] for m in test_metrics]
    if config.export_best:
        summary = {"test_scores": test_scores, "learning_rate": best_lr, "batch_size": best_bs,
                   "max_seq_len": prepared.max_len}
        _export(row, task, tokenizer, Path(best_seed_record["folder"]) / "model", out, summary)
    data = task.data
    if task.kind == "ner":
        errors = ner_errors(data.test, best_pred, data.labels, config.error_examples)
    else:
        errors = classification_errors(data.test, best_pred, data.labels, config.error_examples)
    cell = {
        "fingerprint": group_fp, "task": task.name, "split_id": task.split_id, "kind": task.kind,
        "learning_rate": best_lr, "batch_size": best_bs, "max_seq_len": prepared.max_len,
        "dev_scores": dev_scores, "test_scores": test_scores, "test_metrics": test_metrics,
        "grid": [{"learning_rate": lr, "batch_size": bs, "dev_mean": statistics.fmean(v), "dev_scores": v}
                 for (lr, bs), v in points.items()],
        "epochs": [r["best_epoch"] for r in chosen],
        "windowed_or_truncated": {"train": prepared.train.windowed, "dev": prepared.dev.windowed,
                                  "test": prepared.test.windowed},
        "sizes": {"train": len(data.train), "dev": len(data.dev), "test": len(data.test)},
        "notes": data.notes, "license": task.license, "errors": errors,
    }
    atomic_write_json(group / "cell.json", cell)
    for folder in group.iterdir():  # weights were needed for test and export only
        for leftover in ("model", "tmp"):
            if (folder / leftover).exists():
                shutil.rmtree(folder / leftover)
    return cell


def _trial(config: FinetuneConfig, row: dict, task: LoadedTask, prepared: Prepared, tokenizer, group: Path,
           key: tuple[float, int, int], tfp: str, bar) -> dict:
    """One trial's record: the finished one in its folder when its fingerprint matches, else trained now."""
    lr, bs, seed = key
    folder = group / f"lr{lr:g}_bs{bs}_seed{seed}"
    record_file = folder / "trial.json"
    if record_file.is_file():
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if record.get("fingerprint") == tfp and (folder / "model").is_dir():
            bar.update(1)
            return record
    if folder.exists():
        shutil.rmtree(folder)  # a trial killed midway starts over
    folder.mkdir(parents=True)
    bar.set_postfix_str(f"{row['name']} {task.name} lr={lr:g} bs={bs} seed={seed}")
    record, model = run_trial(row["dir"], row["random_init"], tokenizer, prepared, lr, bs, seed, config, folder / "tmp")
    model.save_pretrained(folder / "model")
    record.update(fingerprint=tfp, folder=str(folder), tested=None)
    atomic_write_json(record_file, record)
    log.info("finetune: %s %s lr=%g bs=%d seed=%d: dev %.4f at epoch %d of %d (%.0f s)", row["name"], task.name, lr,
             bs, seed, record["dev_score"], record["best_epoch"], record["epochs_run"], record["train_seconds"])
    bar.update(1)
    return record


def _export(row: dict, task: LoadedTask, tokenizer, weights: Path, out: Path, summary: dict) -> None:
    from hebrew_lm.finetune.card import fine_tuned_card

    dest = out / "models" / slug(row["name"]) / slug(task.name)
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model = _load_model(weights, task.kind)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    name = f"{row['name']} fine-tuned on {task.name}"
    (tmp / "README.md").write_text(fine_tuned_card(name, row["dir"], row["random_init"], task, summary), encoding="utf-8")
    tmp.rename(dest)
