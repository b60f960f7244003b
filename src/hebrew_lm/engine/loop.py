"""The training loop every objective runs on (nanochat's size, torchtitan's shape).

    result = train(c, objective, make_batch, num_sequences, out, config_fp, dist_, evaluate)

The stage builds the objective (a module whose forward takes a micro-batch and returns its mean loss),
`make_batch(indices, step, micro)` (the micro-batch of those sequences, as a tuple of tensors) and, if
it has a validation split, `evaluate(module, autocast) -> loss`. The loop does the rest: DDP or FSDP2
under torchrun, AdamW with warmup and polynomial decay, gradient accumulation up to the global batch,
fp32/bf16/fp16 autocast, torch.compile, atomic checkpoints with exact resume (weights, optimizer, RNG
and the data position), NaN/spike rollback that skips the offending batch, metrics.jsonl and a log
line per step with tokens/s and ETA.

`c` is a training config: the optimizer, schedule, batch, precision, checkpoint and spike fields of
`hebrew_lm.engine.config.TrainingConfig`, which every training stage's config extends.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hebrew_lm.engine.stream import SequenceStream
from hebrew_lm.engine.checkpoint import Weights, load_checkpoint, save_checkpoint
from hebrew_lm.engine.dist import Dist
from hebrew_lm.engine.metrics import metrics_writer
from hebrew_lm.engine.optim import lr_factor, make_optimizer

log = logging.getLogger("hebrew_lm")


@dataclass
class TrainResult:
    state: dict[str, Any]
    """The loop's final state: step, tokens_seen, data_position, spikes, skipped_batches."""
    model_state: dict[str, torch.Tensor]
    """The full final weights (gathered under FSDP; tied copies left out)."""
    accumulation: int
    sharding: str
    """none, ddp or fsdp."""
    seconds: float


@torch.no_grad()
def evaluate_batches(objective: torch.nn.Module, batches, dist_: Dist, autocast, each: list | None = None) -> float:
    """Mean loss over fixed validation micro-batches, averaged over processes. Goes through the root
    module (`objective`), whose forward gathers parameters under FSDP. `each`, when given, receives every
    batch's loss (bits per byte weighs them by the batch's predicted tokens)."""
    objective.eval()
    losses = []
    for batch in batches:
        with autocast():
            losses.append(objective(*(t.to(dist_.device) for t in batch)).item())
    objective.train()
    if each is not None:
        each.extend(losses)
    return dist_.mean(sum(losses) / len(losses))


def fixed_batch_indices(num_sequences: int, micro_batch_size: int, num_batches: int) -> list[list[int]]:
    """The first `num_batches` micro-batches of a split, the same every time (wrapping if it is small)."""
    n = min(num_batches, max(1, num_sequences // micro_batch_size))
    return [[(b * micro_batch_size + i) % num_sequences for i in range(micro_batch_size)] for b in range(n)]


def micro_batch_shares(objective, micro_batches: list[tuple[torch.Tensor, ...]], dist_: Dist) -> list[float]:
    """Each micro-batch's weight in the step's loss: when the objective counts the tokens it predicts
    (`count_targets`), its tokens over the step's mean tokens per process, so that every token of the
    step weighs the same however the pieces fall into micro-batches and processes (a micro-batch of short
    pieces would otherwise weigh as much as one of long pieces: the gradient-accumulation bug transformers
    fixed in 4.46); DDP and FSDP then average the processes. Else equal shares."""
    count = getattr(objective, "count_targets", None)
    counts = [count(*batch) for batch in micro_batches] if count else []
    mean_total = dist_.mean(float(sum(counts))) if count else 0.0
    return [n / mean_total for n in counts] if mean_total else [1 / len(micro_batches)] * len(micro_batches)


def accumulation_steps(c, dist_: Dist, stage: str = "train") -> int:
    """Micro-batches per process and step: global batch = micro batch x processes x this."""
    accum = c.global_batch_size // (c.micro_batch_size * dist_.world)
    if accum * c.micro_batch_size * dist_.world != c.global_batch_size:
        raise ValueError(f"{stage}.global_batch_size {c.global_batch_size} is not micro_batch_size "
                         f"{c.micro_batch_size} x {dist_.world} processes x a whole number")
    return accum


class SpikeGuard:
    """Which losses are spikes, and when a run cannot get past one.

    A loss is a spike when it is not finite; when it is above `factor` x the median of the last (at least
    ten) losses; or, while fewer than ten exist, when it is more than ln(`factor`) nats above the run's first
    loss (its perplexity `factor` times the one the run started at): a divergence in the first steps (Gemma 3
    270M at lr 3e-4 after one warm-up step diverges within three steps, issue 31 measured). A spike
    rolls back to the last checkpoint and skips the batch; when the run spikes SPIKES_WITHOUT_PROGRESS times
    without getting past the step of the first of them, a rollback will not help (the learning rate
    diverges it again), and the run stops saying so."""

    SPIKES_WITHOUT_PROGRESS = 3

    def __init__(self, factor: float) -> None:
        self.factor, self.recent, self.first = factor, deque(maxlen=50), None
        self.stuck_before: int | None = None
        self.stuck_spikes = 0

    def why(self, loss: float) -> str | None:
        if self.factor <= 0:
            return None
        if not math.isfinite(loss):
            return "not finite"
        if len(self.recent) >= 10 and loss > self.factor * statistics.median(self.recent):
            return f"above {self.factor:g} x the median of recent losses ({statistics.median(self.recent):.4g})"
        if len(self.recent) < 10 and self.first is not None and loss > self.first + math.log(self.factor):
            return f"{loss - self.first:.2f} nats above the run's first loss ({self.first:.4g})"
        return None

    def spiked(self, step: int) -> int:
        """A spike at `step` (steps done before it); returns the spikes since the run last got past a spike."""
        if self.stuck_before is None or step > self.stuck_before:
            self.stuck_before, self.stuck_spikes = step, 0
        self.stuck_spikes += 1
        return self.stuck_spikes

    def accepted(self, loss: float) -> None:
        self.recent.append(loss)
        self.first = loss if self.first is None else self.first


def train(c, objective: torch.nn.Module, make_batch: Callable[[list[int], int, int], tuple[torch.Tensor, ...]],
          num_sequences: int, out: Path, config_fp: str, dist_: Dist,
          evaluate: Callable[[torch.nn.Module, Callable], float] | None = None, stage: str = "train",
          tokens_per_sequence: int | None = None, sequence_lengths=None, stream=None,
          evaluate_first: bool = False) -> TrainResult:
    """Train `objective` on `num_sequences` sequences until c.max_steps; checkpoints in OUT/checkpoints.
    With `sequence_lengths`, each step's sequences are of about one length (`SequenceStream`). A stage
    with its own order of sequences (the curriculum's phases and anchor mix) passes `stream`: anything
    whose `indices(position, count)` is a pure function of the position, which is all resume needs.
    `evaluate` returns the validation loss, or a dict of named losses whose `val_loss` is the main one;
    with `evaluate_first` it also runs before the first step (step 0 in metrics.jsonl)."""
    accum = accumulation_steps(c, dist_, stage)
    model = objective.model
    fsdp = c.fsdp and dist_.world > 1
    ddp = None
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for unit in objective.fsdp_units():
            fully_shard(unit)
        fully_shard(objective)  # what is left (embeddings, heads, tied weights) in the root unit
    elif dist_.world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(objective)
    optimizer = make_optimizer(model, c)  # after sharding: it must hold the sharded parameters
    weights = Weights(objective, optimizer, fsdp)

    state = {"step": 0, "tokens_seen": 0, "data_position": 0, "spikes": 0, "skipped_batches": 0,
             "config_fingerprint": config_fp}
    if c.resume == "auto":
        state = load_checkpoint(out / "checkpoints", weights, config_fp, stage) or state
    forward = ddp or objective
    if c.compile:
        forward = torch.compile(forward)

    def autocast():
        if c.precision == "fp32":
            return torch.autocast(dist_.device.type, enabled=False)
        dtype = torch.bfloat16 if c.precision == "bf16" else torch.float16
        return torch.autocast(dist_.device.type, dtype=dtype)

    scaler = torch.amp.GradScaler(enabled=c.precision == "fp16" and dist_.device.type == "cuda")
    # from step 0 nothing is kept (a step-0 evaluation is rerun); else records up to the checkpoint
    metrics = metrics_writer(out / "metrics.jsonl", state["step"] or -1) if dist_.main else None
    guard = SpikeGuard(c.spike_factor)
    tokens_per_step = c.global_batch_size * (tokens_per_sequence or c.max_seq_len)
    stream = stream or SequenceStream(num_sequences, c.seed, sequence_lengths, c.global_batch_size)

    def checkpoint() -> None:
        model_state, optim_state = weights.gather()
        if dist_.main:
            save_checkpoint(out / "checkpoints", model_state, optim_state, state, c.keep_checkpoints)
        dist_.barrier()

    def validate(step: int) -> None:
        losses = evaluate(objective, autocast)
        losses = losses if isinstance(losses, dict) else {"val_loss": losses}
        val_loss = losses["val_loss"]
        if dist_.main:
            others = "".join(f" | {k} {v:.4f}" for k, v in losses.items() if k != "val_loss")
            log.info("step %6d | validation loss %.4f | perplexity %.2f%s", step, val_loss,
                     math.exp(min(val_loss, 50)), others)
            metrics.write(json.dumps({"step": step, **losses, "val_perplexity": math.exp(min(val_loss, 50))}) + "\n")
            metrics.flush()

    if state["step"] == 0:
        if evaluate is not None and evaluate_first:  # the starting point (a base model's own losses)
            validate(0)
        checkpoint()  # step 0, so that the first spike has somewhere to go back to (every rank: it syncs)
    # timed from here: tokens/s, the ETA and wall_seconds count training, not the step-0 evaluation
    started, started_step = time.time(), state["step"]
    model.train()
    while state["step"] < c.max_steps:
        step = state["step"]
        for group in optimizer.param_groups:
            group["lr"] = c.learning_rate * lr_factor(step, c)
        indices = stream.indices(state["data_position"], c.global_batch_size)
        loss_sum = 0.0
        micro_batches = [make_batch(indices[micro * c.micro_batch_size : (micro + 1) * c.micro_batch_size], step, micro)
                         for micro in range(dist_.rank * accum, (dist_.rank + 1) * accum)]
        shares = micro_batch_shares(objective, micro_batches, dist_)
        for m, batch in enumerate(micro_batches):
            batch = tuple(t.to(dist_.device) for t in batch)
            # gradients are synchronized across processes only on the last micro-batch of the step
            if fsdp:
                objective.set_requires_gradient_sync(m == accum - 1)
            with ddp.no_sync() if ddp is not None and m < accum - 1 else nullcontext():
                with autocast():
                    loss = forward(*batch) * shares[m]
                scaler.scale(loss).backward()
            loss_sum += loss.item()
        loss_value = dist_.mean(loss_sum)
        why = guard.why(loss_value)
        if why:
            skipped_to = state["data_position"] + c.global_batch_size
            spikes = state["spikes"] + 1
            optimizer.zero_grad(set_to_none=True)
            if guard.spiked(step) >= guard.SPIKES_WITHOUT_PROGRESS:
                raise ValueError(f"{stage}: the loss diverged {guard.stuck_spikes} times without getting past step "
                                 f"{guard.stuck_before + 1} (last {loss_value:.4g}: {why}); rolling back does not help: "
                                 f"lower learning_rate ({c.learning_rate:g}) or lengthen warmup_steps ({c.warmup_steps})")
            log.warning("%s: step %d loss %.4g is a spike (%s); restoring the last checkpoint and skipping these %d "
                        "sequences", stage, step + 1, loss_value, why, c.global_batch_size)
            restored = load_checkpoint(out / "checkpoints", weights, config_fp, stage)
            if restored is None:
                raise RuntimeError("loss spike with no checkpoint to restore")
            state = {**restored, "data_position": max(restored["data_position"], skipped_to), "spikes": spikes,
                     "skipped_batches": restored.get("skipped_batches", 0) + 1}
            if metrics:
                metrics.write(json.dumps({"step": state["step"], "event": "spike", "loss": loss_value}) + "\n")
                metrics.flush()
            continue
        guard.accepted(loss_value)
        if c.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        # An objective may keep state the optimizer does not (a MoE router's load-balancing bias).
        step_stats = objective.after_step() if hasattr(objective, "after_step") else {}
        state["step"] += 1
        state["data_position"] += c.global_batch_size
        state["tokens_seen"] += tokens_per_step
        step = state["step"]
        if dist_.main and (step % c.log_every == 0 or step == c.max_steps):
            elapsed = time.time() - started
            tok_s = (step - started_step) * tokens_per_step / max(elapsed, 1e-9)
            eta = (c.max_steps - step) * tokens_per_step / max(tok_s, 1e-9)
            lr = optimizer.param_groups[0]["lr"]
            log.info("step %6d | loss %.4f | lr %.2e | %8.0f tok/s | eta %s", step, loss_value, lr, tok_s,
                     time.strftime("%H:%M:%S", time.gmtime(eta)))
            metrics.write(json.dumps({"step": step, "loss": loss_value, "lr": lr, "tokens_per_s": tok_s,
                                      "tokens_seen": state["tokens_seen"], "elapsed_s": round(elapsed, 3),
                                      **step_stats}) + "\n")
            metrics.flush()
        if evaluate is not None and (step % c.eval_every == 0 or step == c.max_steps):
            validate(step)
        if step % c.checkpoint_every == 0 or step == c.max_steps:
            checkpoint()

    final_state, _ = weights.gather()
    if metrics:
        metrics.close()
    return TrainResult(state, final_state, accum, "fsdp" if fsdp else ("ddp" if ddp else "none"),
                       time.time() - started)
