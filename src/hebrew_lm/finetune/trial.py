"""One trial: one encoder, one task, one (learning rate, batch size, seed), trained with `transformers`'
Trainer until dev stops improving, keeping the best epoch's weights."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import SequentialSampler
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          DataCollatorForTokenClassification, DataCollatorWithPadding, PrinterCallback, Trainer,
                          TrainerCallback, TrainingArguments, set_seed)
from transformers.utils import logging as hf_logging

from hebrew_lm.labels import bioes_violations
from hebrew_lm.finetune.encode import (Encoded, encode_classification, encode_ner, word_predictions)
from hebrew_lm.finetune.metrics import classification_scores, ner_scores
from hebrew_lm.finetune.tasks import LoadedTask

log = logging.getLogger("hebrew_lm")
# Hundreds of trials: transformers' per-load and per-save progress bars would bury the trial bar.
hf_logging.disable_progress_bar()


@dataclass
class Prepared:
    """A task encoded for one tokenizer and max length: what every trial of a grid shares."""

    task: LoadedTask
    label_list: list[str]
    max_len: int
    train: Encoded
    dev: Encoded
    test: Encoded


def label_list(task: LoadedTask) -> list[str]:
    if task.kind == "classification":
        return list(task.data.labels)
    return ["O"] + [f"{p}-{t}" for t in task.data.labels for p in "BIES"]


def prepare(task: LoadedTask, tokenizer, max_len: int) -> Prepared:
    labels = label_list(task)
    ids = {label: i for i, label in enumerate(labels)}
    encode = encode_ner if task.kind == "ner" else encode_classification
    return Prepared(task, labels, max_len, *(encode(tokenizer, getattr(task.data, s), ids, max_len)
                                             for s in ("train", "dev", "test")))


def build_model(model_dir: str, prepared: Prepared, random_init: bool, seed: int):
    """The encoder with a fresh head; `random_init`: the same architecture with every weight fresh."""
    set_seed(seed)
    labels = prepared.label_list
    kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
              "label2id": {label: i for i, label in enumerate(labels)}}
    auto = AutoModelForTokenClassification if prepared.task.kind == "ner" else AutoModelForSequenceClassification
    if random_init:
        return auto.from_config(AutoConfig.from_pretrained(model_dir, **kwargs))
    # The new head's weights are "newly initialized": that is the point, so transformers' warning is quiet.
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return auto.from_pretrained(model_dir, **kwargs)
    finally:
        hf_logging.set_verbosity(level)


def scores(prepared: Prepared, split: str, predictions: np.ndarray, label_ids: np.ndarray,
           decode: str = "argmax") -> tuple[dict, list]:
    """Metrics of `split` from the Trainer's per-position predictions, and the predictions per sentence/example.
    NER is decoded per word with `decode` (argmax or viterbi); the other decoding's F1 is recorded beside
    it (`argmax_f1`, `viterbi_f1`), so one run measures both."""
    data = getattr(prepared.task.data, split)
    if prepared.task.kind == "ner":
        gold, words = [s.tags for s in data], [s.words for s in data]
        decoded = {d: word_predictions(predictions, label_ids, data, prepared.label_list, d) for d in ("argmax", "viterbi")}
        result = ner_scores(gold, decoded[decode], words)
        for d, pred in decoded.items():
            result[f"{d}_f1"] = result["f1"] if d == decode else ner_scores(gold, pred)["f1"]
            result[f"{d}_ill_formed"] = sum(bool(bioes_violations(p)) for p in pred)
        return result, decoded[decode]
    pred = [prepared.label_list[i] for i in predictions]
    return classification_scores([e.label for e in data], pred, prepared.label_list), pred


class OrderedEvalTrainer(Trainer):
    """Trainer whose evaluation keeps the dataset's order. With group_by_length, transformers 5 also
    shuffles evaluation into length groups, and predictions could no longer be matched to their words."""

    def _get_eval_sampler(self, eval_dataset):
        return SequentialSampler(eval_dataset)


class KeepBest(TrainerCallback):
    """Early stopping on the dev score with the best weights kept in memory (no checkpoint files).

    A tie on the score (an NER model that still tags everything O scores 0 for a few epochs) counts as
    progress when the dev loss fell, so a slow start is not mistaken for the end of learning."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -1.0
        self.best_loss = float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad = 0
        self.history: list[dict] = []
        self.train_loss = float("nan")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.train_loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        score, loss = float(metrics["eval_score"]), float(metrics["eval_loss"])
        epoch = round(state.epoch or 0)
        self.history.append({"epoch": epoch, "train_loss": self.train_loss, "dev_loss": loss, "dev_score": score})
        if score > self.best or (score == self.best and loss < self.best_loss):
            self.best, self.best_loss, self.best_epoch, self.bad = score, loss, epoch, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad += 1
            if self.bad >= self.patience:
                control.should_training_stop = True


def _args(out: Path, **kwargs) -> TrainingArguments:
    return TrainingArguments(output_dir=str(out), per_device_eval_batch_size=64, save_strategy="no",
                             report_to="none", disable_tqdm=True, dataloader_num_workers=0,
                             use_cpu=not torch.cuda.is_available(), **kwargs)


def collator(tokenizer, kind: str, pad_to: int | None):
    padding = "max_length" if pad_to else "longest"
    if kind == "ner":
        return DataCollatorForTokenClassification(tokenizer, padding=padding, max_length=pad_to)
    return DataCollatorWithPadding(tokenizer, padding=padding, max_length=pad_to)


def _argmax(logits, labels):
    return logits.argmax(-1)


def _log_probs(logits, labels):
    """NER keeps each position's log-probabilities, for the Viterbi decoding over legal BIOES sequences."""
    return torch.log_softmax(logits.float(), dim=-1)


def preprocess_for(kind: str):
    return _log_probs if kind == "ner" else _argmax


def run_trial(model_dir: str, random_init: bool, tokenizer, prepared: Prepared, lr: float, batch_size: int,
              seed: int, config, out: Path) -> tuple[dict, object]:
    """Train with early stopping on dev; returns the trial's record and the model holding the best weights."""
    pad_to = prepared.max_len if config.padding == "max_length" else None
    model = build_model(model_dir, prepared, random_init, seed)
    keep = KeepBest(config.patience)

    def compute(p):
        return {"score": scores(prepared, "dev", p.predictions, p.label_ids, config.ner_decoding)[0]["score"]}

    trainer = OrderedEvalTrainer(
        model=model,
        args=_args(out, learning_rate=lr, per_device_train_batch_size=batch_size, num_train_epochs=config.max_epochs,
                   warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, lr_scheduler_type="linear",
                   eval_strategy="epoch", logging_strategy="epoch", seed=seed, data_seed=seed,
                   train_sampling_strategy="group_by_length" if config.padding == "bucketed" else "random"),
        train_dataset=prepared.train.features, eval_dataset=prepared.dev.features,
        data_collator=collator(tokenizer, prepared.task.kind, pad_to),
        compute_metrics=compute, preprocess_logits_for_metrics=preprocess_for(prepared.task.kind), callbacks=[keep],
    )
    trainer.remove_callback(PrinterCallback)  # one log line per trial from the stage instead
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    if keep.best_state is not None:
        model.load_state_dict(keep.best_state)
    record = {"learning_rate": lr, "batch_size": batch_size, "seed": seed, "dev_score": keep.best,
              "best_epoch": keep.best_epoch, "epochs_run": len(keep.history), "history": keep.history,
              "train_seconds": round(seconds, 2), "max_seq_len": prepared.max_len}
    return record, model


def predict(model, tokenizer, prepared: Prepared, split: str, out: Path, decode: str = "argmax") -> tuple[dict, list]:
    """Scores and predictions of `model` on one split."""
    trainer = OrderedEvalTrainer(model=model, args=_args(out), data_collator=collator(tokenizer, prepared.task.kind, None),
                                 preprocess_logits_for_metrics=preprocess_for(prepared.task.kind))
    result = trainer.predict(getattr(prepared, split).features)
    return scores(prepared, split, result.predictions, result.label_ids, decode)
