"""The one training-stage runner: every training stage (masked-LM pretraining, the decoder, curriculum
CPT, SFT, context extension) is a `TrainingStage` handed to `run_training_stage`, which checks and
fingerprints its inputs, claims its folder, trains on the engine's loop and writes the finished folder.

    STAGE = TrainingStage("pretrain", FORMAT_VERSION, prepare)      # prepare(c, corpus, tokenizer, dist_) -> Prepared
    def run(config, force=False): return run_training_stage(config, STAGE, force)

A stage says only what is its own: the objective (a plug-in `torch.nn.Module`, see `hebrew_lm.engine`),
its data (`TrainingData`: sequences, their order, validation), how a micro-batch is made, and what it
exports and adds to stats.json. Checks it needs before the folder is claimed go in `check`; inputs
beyond the corpus and tokenizer that its checkpoints depend on go in `inputs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hebrew_lm.engine.dist import Dist
from hebrew_lm.engine.export import plot_curves
from hebrew_lm.engine.folder import begin, check_inputs, final_losses, finish, training_fingerprint
from hebrew_lm.engine.loop import accumulation_steps, train

log = logging.getLogger("hebrew_lm")


@dataclass
class TrainingData:
    """What a stage trains on: sequences by id, the order the engine reads them in, and the validation.
    The decoder stage's is one corpus; the curriculum's is phases of a Hebrew corpus mixed with an anchor
    corpus (`hebrew_lm.cpt.mixture`); SFT's is weighted conversation sources; the masked LM's is packed
    sequences of one length."""

    num_sequences: int
    sequence: Callable[[int], torch.Tensor]
    lengths: np.ndarray | None
    """Every sequence's length (bucketing, tokens per step); None: all of max_seq_len."""
    evaluate: Callable | None
    """(objective, autocast) -> validation loss, or a dict of named losses with `val_loss`."""
    stream: Any = None
    """The engine's order of sequences; None: the shuffled (length-bucketed) stream over all of them."""
    describe: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    evaluate_first: bool = False
    """Evaluate before the first step too (a base model's own losses, for forgetting)."""
    summarize: Callable[[Path, list[dict]], dict[str, Any]] | None = None
    """(output folder, metrics records) -> more stats, and any plots it draws there, after training."""
    collate: Callable[[list[int]], tuple[torch.Tensor, ...]] | None = None
    """Sequence ids -> the objective's micro-batch; None: the stage's own `make_batch`."""


@dataclass
class Prepared:
    """A training stage's objective and data, built once its folder is claimed, and what it does after."""

    objective: torch.nn.Module
    data: TrainingData
    make_batch: Callable[[list[int], int, int], tuple[torch.Tensor, ...]]
    """(sequence ids, step, global micro-batch) -> the objective's inputs."""
    rebuild: Callable[[], torch.nn.Module]
    """A plain model to load FSDP's gathered weights into for export."""
    export: Callable[[torch.nn.Module, Path, list[dict], dict[str, Any]], None]
    """(model, output folder, metrics records, stats) after training: write the model, add to stats."""
    stats: dict[str, Any] = field(default_factory=dict)
    """What stats.json says of the stage before training (parameters, ...)."""
    describe: str = ""
    """The stage's line in the log when training starts."""
    tokens_per_sequence: int | None = None
    """For tokens/s and tokens_seen; None: max_seq_len."""
    length_bucketing: bool = False
    loss_label: str = "training loss"


@dataclass(frozen=True)
class TrainingStage:
    name: str
    format_version: int
    prepare: Callable[[Any, Path, Path, Dist], Prepared]
    check: Callable[[Any, Path], None] | None = None
    """(config, tokenizer folder): checks that must fail before the output folder is claimed."""
    inputs: Callable[[Any], dict[str, Any]] | None = None
    """(config) -> more inputs the fingerprint covers (a base's weights, an anchor corpus, conversation files)."""


def run_training_stage(c, stage: TrainingStage, force: bool = False) -> Path:
    """Train `stage` with config `c` into `c.output_dir` (resuming, or nothing to do when it is finished
    with the same config and inputs) and return that folder."""
    dist_ = Dist()
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = check_inputs(c)
    if stage.check:
        stage.check(c, tokenizer_dir)
    config_fp = training_fingerprint(c, stage.format_version, corpus_dir, tokenizer_dir, dist_,
                                     **(stage.inputs(c) if stage.inputs else {}))
    if begin(c, stage.name, config_fp, dist_, force):
        return out
    run = stage.prepare(c, corpus_dir, tokenizer_dir, dist_)
    accum = accumulation_steps(c, dist_, stage.name)
    if dist_.main:
        log.info("%s: %s; global batch %d = %d x %d processes x %d accumulation; %d steps", stage.name, run.describe,
                 c.global_batch_size, c.micro_batch_size, dist_.world, accum, c.max_steps)
    data = run.data
    result = train(c, run.objective, run.make_batch, data.num_sequences, out, config_fp, dist_, data.evaluate,
                   stage=stage.name, tokens_per_sequence=run.tokens_per_sequence, stream=data.stream,
                   evaluate_first=data.evaluate_first,
                   sequence_lengths=data.lengths if run.length_bucketing else None)
    if dist_.main:
        model = run.objective.model
        if result.sharding == "fsdp":  # export from a plain copy holding the gathered weights
            model = run.rebuild()
            model.load_state_dict(result.model_state, strict=False)
        records, losses = final_losses(out)
        stats = {**run.stats, "steps": result.state["step"], "tokens_seen": result.state["tokens_seen"],
                 "spikes": result.state["spikes"], **data.stats, "wall_seconds": round(result.seconds, 1),
                 "processes": dist_.world, "gradient_accumulation": accum, "sharding": result.sharding, **losses}
        if data.summarize:
            stats.update(data.summarize(out, records))
        run.export(model, out, records, stats)
        plot_curves(records, out / "curves.png", loss_label=run.loss_label)
        finish(c, stage.name, config_fp, stats)
        log.info("%s: -> %s", stage.name, out / "model")
    dist_.barrier()
    return out
