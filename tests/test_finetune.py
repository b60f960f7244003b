"""The finetune stage end to end on a tiny pretrained model: grid, dev-only selection, test once, results
table, error analysis, exported models that `pipeline` loads, skip on rerun and resume after SIGKILL."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hebrew_lm.finetune.config import FinetuneConfig, TaskSpec
from hebrew_lm.mlm.config import PretrainConfig
from hebrew_lm.embedded.htb_ner import read_htb_ner
from hebrew_lm.finetune.stage import run
from hebrew_lm.mlm import stage as pretrain

from helpers import corpus_and_tokenizer


def write_bmes(path: Path, sentences) -> str:
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags)) for s in sentences) + "\n",
                    encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, hebrew_docs):
    root = corpus_and_tokenizer(tmp_path_factory.mktemp("ft"), hebrew_docs[:250])
    out = pretrain.run(PretrainConfig(
        corpus_dir=str(root / "corpus"), tokenizer_dir=str(root / "tok"), output_dir=str(root / "pt"),
        cache_dir=str(root / "cache"), model="tiny", max_seq_len=64, global_batch_size=8, micro_batch_size=8,
        max_steps=10, warmup_steps=2, learning_rate=1e-3, eval_every=10, eval_batches=1, checkpoint_every=10))
    htb = read_htb_ner()
    ner = {split: write_bmes(root / f"{split}.bmes", htb[split][:n]) for split, n in
           (("train", 120), ("dev", 30), ("test", 30))}
    return {"model": str(out / "model"), "ner": ner, "root": root}


def config(encoder, out: Path, **overrides) -> FinetuneConfig:
    ner = encoder["ner"]
    values = dict(output_dir=str(out), models=[encoder["model"]], model_names=["tiny-he"],
                  tasks=[TaskSpec("my-ner", train=ner["train"], dev=ner["dev"], test=ner["test"]),
                         TaskSpec("sentiment-demo")],
                  learning_rates=[1e-3, 3e-3], batch_sizes=[16], seeds=[1, 2], max_epochs=2, patience=1, threads=1)
    values.update(overrides)
    return FinetuneConfig(**values)


def test_grid_selection_on_dev_test_once_results_and_pipelines(encoder, tmp_path, caplog):
    from transformers import pipeline

    encoder_card_before = (Path(encoder["model"]) / "README.md").read_bytes()
    out = run(config(encoder, tmp_path / "ft"))
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert list(results["models"]) == ["tiny-he", "tiny-he (random init)"]
    assert results["columns"] == ["my-ner", "Sentiment (demo)"]
    for row in results["models"].values():
        for name in ("my-ner", "sentiment-demo"):
            test = row["tasks"][name]["test"]
            assert test["n"] == 2 and 0.0 <= test["mean"] <= 1.0
        assert row["average"] == pytest.approx(
            (row["tasks"]["my-ner"]["test"]["mean"] + row["tasks"]["sentiment-demo"]["test"]["mean"]) / 2)
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "| Model | my-ner | Sentiment (demo) | Average |" in table and "| tiny-he (random init) |" in table

    for group in (out / "trials").glob("*/*"):
        cell = json.loads((group / "cell.json").read_text(encoding="utf-8"))
        # Selection used dev only: the chosen grid point has the best mean dev score. Where grid points tie
        # on dev (the 2-epoch NER cell, at F1 0) taking the first maximum passes whatever the code chose, so
        # the sentiment cell must have points that differ.
        if cell["task"] == "sentiment-demo":
            assert len({g["dev_mean"] for g in cell["grid"]}) == len(cell["grid"]), cell["grid"]
        best = max(cell["grid"], key=lambda g: g["dev_mean"])
        assert (cell["learning_rate"], cell["batch_size"]) == (best["learning_rate"], best["batch_size"])
        assert cell["max_seq_len"] % 64 == 0
        # ... and only its seeds were scored on test; no trial keeps its weights.
        trials = [json.loads(p.read_text(encoding="utf-8")) for p in group.glob("*/trial.json")]
        assert len(trials) == 4
        tested = [t for t in trials if t["tested"] is not None]
        assert {(t["learning_rate"], t["batch_size"]) for t in tested} == {(best["learning_rate"], best["batch_size"])}
        assert len(tested) == 2 and not list(group.glob("*/model"))

    ner = pipeline("token-classification", model=str(out / "models" / "tiny-he" / "my-ner"), aggregation_strategy="simple")
    assert isinstance(ner("דוד בן גוריון נולד בפולין ועלה לארץ ישראל."), list)
    labels = {"positive", "negative", "neutral"}
    sentiment = pipeline("text-classification", model=str(out / "models" / "tiny-he" / "sentiment-demo"))
    assert sentiment("השירות היה מעולה, ממליץ בחום!")[0]["label"] in labels

    # The recorded scores belong to the predictions: the exported best sentiment model, run by hand over
    # the demo test set one text at a time, reproduces its test score.
    from hebrew_lm.embedded.sentiment_demo import sentiment_demo
    from hebrew_lm.finetune.metrics import classification_scores

    cell = json.loads((out / "trials" / "tiny-he" / "sentiment-demo" / "cell.json").read_text(encoding="utf-8"))
    best_seed = max(range(2), key=lambda i: cell["dev_scores"][i])
    test = sentiment_demo()["test"]
    by_hand = [p["label"] for p in sentiment([e.text for e in test])]
    assert classification_scores([e.label for e in test], by_hand, sorted(labels))["score"] == pytest.approx(
        cell["test_scores"][best_seed])

    from huggingface_hub import ModelCard

    card = ModelCard.load(str(out / "models" / "tiny-he" / "my-ner" / "README.md"))
    assert card.data.language == "he" and card.data.pipeline_tag == "token-classification"
    (result,) = card.data.eval_results
    ner_cell = json.loads((out / "trials" / "tiny-he" / "my-ner" / "cell.json").read_text(encoding="utf-8"))
    assert result.dataset_type == "my-ner" and result.metric_value == pytest.approx(
        sum(ner_cell["test_scores"]) / 2, abs=1e-4)

    # The encoder is an input: its own card is untouched; the card with results is in the stage's output.
    assert (Path(encoder["model"]) / "README.md").read_bytes() == encoder_card_before
    encoder_card = ModelCard.load(str(out / "encoder_cards" / "tiny-he" / "README.md"))
    assert {r.dataset_type for r in encoder_card.data.eval_results} == {"my-ner", "sentiment-demo"}
    assert encoder_card.data.datasets and "## Fine-tuning results" in encoder_card.text

    errors = (out / "errors.md").read_text(encoding="utf-8")
    assert "## tiny-he on my-ner" in errors and "missed" in errors and "negation cue" in errors
    assert (out / "results.png").stat().st_size > 0 and (out / "results.csv").read_text().startswith("model,")

    caplog.clear()
    caplog.set_level(logging.INFO, logger="hebrew_lm")
    run(config(encoder, tmp_path / "ft"))
    assert "nothing to do" in caplog.text


@pytest.mark.slow
def test_a_killed_grid_resumes_and_skips_finished_trials(encoder, tmp_path):
    out = tmp_path / "ft"
    cfg = config(encoder, out, tasks=[TaskSpec("sentiment-demo")], learning_rates=[1e-3, 2e-3, 3e-3],
                 random_init_baseline=False, max_epochs=3, patience=3)
    argv = [sys.executable, "-m", "hebrew_lm", "finetune", "--output_dir", str(out), "--models", cfg.models[0],
            "--model_names", "tiny-he", "--tasks", "sentiment-demo", "--learning_rates", "1e-3", "2e-3", "3e-3",
            "--batch_sizes", "16", "--seeds", "1", "2", "--max_epochs", "3", "--patience", "3",
            "--random_init_baseline", "false", "--threads", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    deadline = time.time() + 240
    while len(list(out.glob("trials/*/*/*/trial.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p: json.loads(p.read_text()) for p in out.glob("trials/*/*/*/trial.json")}
    assert 2 <= len(done) < 6 and not (out / "_SUCCESS").exists()

    run(cfg)
    trials = {p: json.loads(p.read_text()) for p in out.glob("trials/*/*/*/trial.json")}
    assert len(trials) == 6 and (out / "_SUCCESS").exists()
    for path, before in done.items():
        # Not trained again: a retrained trial would have measured its own training time.
        assert trials[path]["train_seconds"] == before["train_seconds"]
        assert trials[path]["history"] == before["history"]


def test_bad_model_folder_and_bad_task_are_clear_errors(encoder, tmp_path):
    with pytest.raises(ValueError, match="is not a Hugging Face model folder"):
        run(config(encoder, tmp_path / "a", models=[str(tmp_path)], model_names=["x"]))
    with pytest.raises(ValueError, match="not a built-in task"):
        run(config(encoder, tmp_path / "b", tasks=[TaskSpec("mystery")]))
    bad = encoder["root"] / "bad.bmes"
    bad.write_text("דוד S-PER\n\nלוי I-PER\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.bmes:3: illegal BIOES transition"):
        run(config(encoder, tmp_path / "c", tasks=[TaskSpec("x", train=encoder["ner"]["train"], dev=str(bad),
                                                            test=encoder["ner"]["test"])]))


def test_learning_curves_fine_tune_nested_fractions_with_the_chosen_point_and_plot_them(encoder, tmp_path):
    from hebrew_lm.finetune.stage import train_subset
    from hebrew_lm.finetune.tasks import load_task

    out = run(config(encoder, tmp_path / "lc", learning_rates=[3e-3], seeds=[1], max_epochs=1,
                     train_fractions=[0.1, 0.5, 1.0]))
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    curves = results["learning_curves"]
    assert set(curves) == {"tiny-he", "tiny-he (random init)"}
    ner = curves["tiny-he"]["my-ner"]
    assert [p["train_size"] for p in ner] == [12, 60, 120]
    assert ner[-1]["test"][0] == results["models"]["tiny-he"]["tasks"]["my-ner"]["test"]["mean"]  # 100% is the main run
    assert [p["train_size"] for p in curves["tiny-he"]["sentiment-demo"]] == [24, 120, 240]
    assert (out / "learning_curves.png").stat().st_size > 1000
    assert not (out / "models" / "tiny-he" / "my-ner@0.1").exists()  # only the full-data models are exported
    task = load_task(TaskSpec("sentiment-demo"), "", True)[0]
    small, large = train_subset(task, 0.1), train_subset(task, 0.5)
    assert {e.where for e in small.data.train} <= {e.where for e in large.data.train}  # nested
    assert small.data.test == task.data.test and small.data.dev == task.data.dev
