"""The pretraining stage: a RoBERTa masked-LM encoder trained from scratch on the Hebrew corpus.

    hebrew-lm pretrain configs/tiny.yaml                             # one CPU process
    torchrun --nproc_per_node 8 -m hebrew_lm pretrain configs/hallelubert-base.yaml   # DDP

Our own compact loop on plain PyTorch (nanochat style): logits only at masked positions, exact
resume (weights, optimizer, schedule, RNG, data position), loss-spike recovery, atomic checkpoints.
Output folder:
    model/                  the exported Hugging Face model (safetensors, config, tokenizer, card)
    checkpoints/ckpt-STEP/  model.safetensors, optimizer.pt, state.json (the newest keep_checkpoints)
    metrics.jsonl           one record per logged step and per validation
    curves.png, stats.json, config.yaml, _SUCCESS
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import statistics
import time
from collections import deque
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hebrew_lm.config import PretrainConfig, to_dict
from hebrew_lm.corpus.shards import load_manifest
from hebrew_lm.mlm.data import PackedSequences, build_token_store
from hebrew_lm.mlm.masking import Masker, mask_tokens
from hebrew_lm.mlm.model import MaskedLMObjective, build_model, roberta_config
from hebrew_lm.runs import (
    atomic_write_json,
    atomic_write_text,
    check_finished,
    dump_yaml,
    fingerprint,
    fsync_dir,
    is_finished,
    mark_success,
    claim_output_dir,
    clear_owned_dir,
    read_success,
    sha256_file,
)

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------------
# Processes


class Dist:
    """Rank and world size, from torchrun's environment when present; one process otherwise."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu")
        if self.world > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world


# --------------------------------------------------------------------------------------------------
# Optimizer, schedule, batches


def make_optimizer(model: torch.nn.Module, c: PretrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=c.learning_rate, betas=(c.adam_beta1, c.adam_beta2), eps=c.adam_eps)


def lr_factor(step: int, c: PretrainConfig) -> float:
    """Linear warmup to 1, then polynomial decay to 0 at max_steps (`step` counts finished steps)."""
    if step < c.warmup_steps:
        return (step + 1) / c.warmup_steps
    remaining = max(0, c.max_steps - step) / max(1, c.max_steps - c.warmup_steps)
    return remaining**c.lr_decay_power


def sequence_order(num_sequences: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_sequences, generator=g)


def batch_indices(position: int, count: int, num_sequences: int, seed: int) -> list[int]:
    """Sequence indices `position .. position + count` of the endless, per-epoch shuffled stream."""
    out = []
    while count:
        epoch, offset = divmod(position, num_sequences)
        order = sequence_order(num_sequences, seed, epoch)
        take = min(count, num_sequences - offset)
        out.extend(order[offset : offset + take].tolist())
        position += take
        count -= take
    return out


def mask_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """Masking depends only on (seed, step, global micro-batch), so a resumed or re-sharded run masks alike."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 65_537 + micro)


# --------------------------------------------------------------------------------------------------
# Checkpoints


def _checkpoint_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.glob("ckpt-*") if p.is_dir() and not p.name.endswith(".tmp")), reverse=True)


# Tied to other weights (the input embeddings, lm_head.bias): stored once, under their other name.
TIED_KEYS = ("lm_head.decoder.weight", "lm_head.decoder.bias")


class Weights:
    """Full (unsharded) model and optimizer state, gathered from every process when FSDP shards them."""

    def __init__(self, objective: torch.nn.Module, optimizer, fsdp: bool) -> None:
        self.objective, self.optimizer, self.fsdp = objective, optimizer, fsdp

    def _options(self, **kw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)

    def gather(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(model state without the tied keys, optimizer state); a collective call under FSDP."""
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

            full = get_model_state_dict(self.objective, options=self._options())
            model_state = {k.removeprefix("model."): v for k, v in full.items()}
            # Before the first step there is no optimizer state to save; asking for it would make
            # torch initialize it with a step of its own and shift Adam's bias correction by one.
            optim_state = (get_optimizer_state_dict(self.objective, self.optimizer, options=self._options())
                           if self.optimizer.state else {})
        else:
            model_state = {k: v.detach().cpu() for k, v in self.objective.model.state_dict().items()}
            optim_state = self.optimizer.state_dict()
        return {k: v.contiguous() for k, v in model_state.items() if k not in TIED_KEYS}, optim_state

    def restore(self, model_state: dict[str, torch.Tensor], optim_state: dict[str, Any]) -> None:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

            set_model_state_dict(self.objective, {f"model.{k}": v for k, v in model_state.items()},
                                 options=self._options(strict=False))
            if optim_state:
                set_optimizer_state_dict(self.objective, self.optimizer, optim_state, options=self._options())
            else:
                self.optimizer.state.clear()
        else:
            missing, unexpected = self.objective.model.load_state_dict(model_state, strict=False)
            if unexpected or set(missing) - set(TIED_KEYS):
                raise ValueError(f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}")
            self.optimizer.load_state_dict(optim_state)


def save_checkpoint(root: Path, model_state: dict[str, torch.Tensor], optim_state: dict[str, Any],
                    state: dict[str, Any], keep: int) -> Path:
    """Write ckpt-STEP under a temporary name, fsync every file, rename; then drop the oldest."""
    from safetensors.torch import save_file

    final = root / f"ckpt-{state['step']:08d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(model_state, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optim_state, "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
               tmp / "optimizer.pt")
    atomic_write_json(tmp / "state.json", state)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(root)
    for old in _checkpoint_dirs(root)[keep:]:
        shutil.rmtree(old)
    return final


def load_checkpoint(root: Path, weights: Weights, config_fp: str) -> dict[str, Any] | None:
    """Restore the newest checkpoint that loads; a corrupt one is skipped with a warning, one from
    another config is an error."""
    from safetensors.torch import load_file

    for ckpt in _checkpoint_dirs(root):
        try:
            state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            log.warning("pretrain: checkpoint %s is unreadable (%s); trying the one before", ckpt, e)
            continue
        if state.get("config_fingerprint") != config_fp:
            raise ValueError(
                f"{ckpt} was written by a run with another config; choose another output_dir, "
                f"or pass --resume never to start over"
            )
        try:
            model_state = load_file(str(ckpt / "model.safetensors"))
            extra = torch.load(ckpt / "optimizer.pt", weights_only=True)
            weights.restore(model_state, extra["optimizer"])
        except Exception as e:  # a torn or corrupted file: fall back to the previous checkpoint
            log.warning("pretrain: checkpoint %s is corrupt (%s); falling back to the one before", ckpt, e)
            continue
        torch.set_rng_state(extra["rng_cpu"])
        if extra["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(extra["rng_cuda"])
        log.info("pretrain: resumed from %s (step %d)", ckpt, state["step"])
        return state
    return None


# --------------------------------------------------------------------------------------------------
# The loop


def _metrics_writer(path: Path, up_to_step: int):
    """Append to metrics.jsonl, first dropping records past `up_to_step` (a killed run's tail that
    will be recomputed)."""
    if path.exists():
        kept = [line for line, record in read_metrics(path, with_lines=True) if record["step"] <= up_to_step]
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return open(path, "a", encoding="utf-8")


def read_metrics(path: Path, with_lines: bool = False) -> list:
    """The records of metrics.jsonl. A torn last line (a kill mid-write) is dropped with a warning: it lies
    past the last checkpoint and is recomputed anyway. A bad line elsewhere is an error naming it."""
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a metrics record")
        except ValueError as e:
            if all(not rest.strip() for rest in lines[n:]):
                log.warning("pretrain: %s:%d: torn last line dropped (a run killed mid-write): %r", path, n, line[:60])
                break
            raise ValueError(f"{path}:{n}: not a metrics record ({e}); fix or remove that line") from None
        out.append((line, record) if with_lines else record)
    return out


@torch.no_grad()
def evaluate(objective, data: PackedSequences, masker: Masker, c: PretrainConfig, dist_: Dist, autocast) -> float:
    """Mean masked-LM loss on fixed validation batches, masked the same way every time. Goes through
    the root module (`objective`), whose forward gathers parameters under FSDP."""
    objective.eval()
    losses = []
    n = min(c.eval_batches, max(1, len(data) // c.micro_batch_size))
    for b in range(n):
        idx = [(b * c.micro_batch_size + i) % len(data) for i in range(c.micro_batch_size)]
        ids = torch.stack([data[i] for i in idx])
        inputs, labels = mask_tokens(ids, masker, mask_generator(c.seed + 7919, 0, b))
        inputs, labels = inputs.to(dist_.device), labels.to(dist_.device)
        with autocast():
            losses.append(objective(inputs, labels).item())
    objective.train()
    return dist_.mean(sum(losses) / len(losses))


def run(config: PretrainConfig, force: bool = False) -> Path:
    """Pretrain into `config.output_dir` and return that folder."""
    from tokenizers import Tokenizer

    c = config
    dist_ = Dist()
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = Path(c.corpus_dir), Path(c.tokenizer_dir)
    claim_output_dir(c.cache_dir, "token cache", "cache_dir")  # before anything else: a bad cache_dir fails fast
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise ValueError(f"{tokenizer_dir} has no tokenizer.json; train one with `hebrew-lm tokenizer train`")
    load_manifest(corpus_dir)  # a clear error unless the corpus stage finished
    positions = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get(
        "model_max_length", c.max_seq_len) if (tokenizer_dir / "tokenizer_config.json").is_file() else c.max_seq_len
    if c.max_seq_len > positions:
        raise ValueError(f"pretrain.max_seq_len is {c.max_seq_len}, more than the {positions} positions the tokenizer "
                         f"declares (model_max_length in {tokenizer_dir / 'tokenizer_config.json'}); lower max_seq_len, "
                         f"or train the tokenizer with a larger tokenizer.model_max_length")
    config_fp = fingerprint({"version": FORMAT_VERSION, "config": {k: v for k, v in to_dict(c).items() if k != "resume"},
                             "corpus": read_success(corpus_dir).get("fingerprint"),
                             "tokenizer": sha256_file(tokenizer_dir / "tokenizer.json"), "world": dist_.world})
    # Rank 0 decides (and with --force removes the old run); the others follow after the barrier.
    done = check_finished(out, config_fp, "pretrain", force) if dist_.main else False
    dist_.barrier()
    if done or (not dist_.main and is_finished(out)):
        return out
    if dist_.main:
        claim_output_dir(out, "pretrain")
        if c.resume == "never":
            clear_owned_dir(out, "pretrain", "resume is never")
        (out / "checkpoints").mkdir(exist_ok=True)
    dist_.barrier()

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    vocab_size = tokenizer.get_vocab_size()
    if dist_.main:  # tokenize once; the other processes then find the stores finished
        for split in ("train", "validation"):
            build_token_store(corpus_dir, tokenizer_dir, split, c.cache_dir)
    dist_.barrier()
    train_store = build_token_store(corpus_dir, tokenizer_dir, "train", c.cache_dir)
    val_store = build_token_store(corpus_dir, tokenizer_dir, "validation", c.cache_dir)
    train = PackedSequences(train_store, c.max_seq_len)
    has_val = json.loads((val_store / "meta.json").read_text())["num_tokens"] >= c.max_seq_len
    val = PackedSequences(val_store, c.max_seq_len) if has_val else None
    accum = c.global_batch_size // (c.micro_batch_size * dist_.world)
    if accum * c.micro_batch_size * dist_.world != c.global_batch_size:
        raise ValueError(
            f"pretrain.global_batch_size {c.global_batch_size} is not micro_batch_size {c.micro_batch_size} "
            f"x {dist_.world} processes x a whole number"
        )
    if len(train) < c.global_batch_size:
        log.warning("pretrain: the corpus holds %d sequences of %d tokens, fewer than one global batch (%d); "
                    "they will repeat within a step", len(train), c.max_seq_len, c.global_batch_size)

    torch.manual_seed(c.seed)
    model_config = roberta_config(c.model, vocab_size, c.max_seq_len, c.dropout)
    model = build_model(model_config).to(dist_.device)
    params = model.num_parameters()
    masker = Masker.from_tokenizer(tokenizer, c.mlm_probability, c.whole_word_masking)
    # Validation always masks like RoBERTa (15% of single tokens), so that runs with other masking
    # recipes report perplexities on the same task and can be compared.
    validation_masker = dataclasses.replace(masker, probability=0.15, whole_word=False)
    objective = MaskedLMObjective(model)
    fsdp = c.fsdp and dist_.world > 1
    ddp = None
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for layer in model.roberta.encoder.layer:
            fully_shard(layer)
        fully_shard(objective)  # embeddings and LM head (tied) in the root unit
    elif dist_.world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(objective)
    optimizer = make_optimizer(model, c)  # after sharding: it must hold the sharded parameters
    weights = Weights(objective, optimizer, fsdp)

    state = {"step": 0, "tokens_seen": 0, "data_position": 0, "spikes": 0, "skipped_batches": 0,
             "config_fingerprint": config_fp}
    if c.resume == "auto":
        state = load_checkpoint(out / "checkpoints", weights, config_fp) or state
    forward = ddp or objective
    if c.compile:
        forward = torch.compile(forward)

    def autocast():
        if c.precision == "fp32":
            return torch.autocast(dist_.device.type, enabled=False)
        dtype = torch.bfloat16 if c.precision == "bf16" else torch.float16
        return torch.autocast(dist_.device.type, dtype=dtype)

    scaler = torch.amp.GradScaler(enabled=c.precision == "fp16" and dist_.device.type == "cuda")
    metrics = _metrics_writer(out / "metrics.jsonl", state["step"]) if dist_.main else None
    if dist_.main:
        log.info("pretrain: %s model, %s parameters, %d sequences of %d tokens; global batch %d = %d x %d "
                 "processes x %d accumulation; %d steps", c.model, f"{params:,}", len(train), c.max_seq_len,
                 c.global_batch_size, c.micro_batch_size, dist_.world, accum, c.max_steps)
    recent: deque[float] = deque(maxlen=50)
    tokens_per_step = c.global_batch_size * c.max_seq_len
    started, started_step = time.time(), state["step"]

    def checkpoint() -> None:
        model_state, optim_state = weights.gather()
        if dist_.main:
            save_checkpoint(out / "checkpoints", model_state, optim_state, state, c.keep_checkpoints)
        dist_.barrier()

    if state["step"] == 0:
        checkpoint()  # step 0, so that the first spike has somewhere to go back to (every rank: it syncs)
    model.train()
    while state["step"] < c.max_steps:
        step = state["step"]
        for group in optimizer.param_groups:
            group["lr"] = c.learning_rate * lr_factor(step, c)
        indices = batch_indices(state["data_position"], c.global_batch_size, len(train), c.seed)
        loss_sum = 0.0
        for m in range(accum):
            micro = dist_.rank * accum + m
            idx = indices[micro * c.micro_batch_size : (micro + 1) * c.micro_batch_size]
            ids = torch.stack([train[i] for i in idx])
            inputs, labels = mask_tokens(ids, masker, mask_generator(c.seed, step, micro))
            inputs, labels = inputs.to(dist_.device), labels.to(dist_.device)
            # gradients are synchronized across processes only on the last micro-batch of the step
            if fsdp:
                objective.set_requires_gradient_sync(m == accum - 1)
            with ddp.no_sync() if ddp is not None and m < accum - 1 else nullcontext():
                with autocast():
                    loss = forward(inputs, labels) / accum
                scaler.scale(loss).backward()
            loss_sum += loss.item()
        loss_value = dist_.mean(loss_sum)
        spike = c.spike_factor > 0 and (not math.isfinite(loss_value) or (
            len(recent) >= 10 and loss_value > c.spike_factor * statistics.median(recent)))
        if spike:
            skipped_to = state["data_position"] + c.global_batch_size
            spikes = state["spikes"] + 1
            optimizer.zero_grad(set_to_none=True)
            log.warning("pretrain: step %d loss %.4g is a spike (median of recent %.4g); restoring the last "
                        "checkpoint and skipping these %d sequences", step + 1, loss_value,
                        statistics.median(recent) if recent else float("nan"), c.global_batch_size)
            restored = load_checkpoint(out / "checkpoints", weights, config_fp)
            if restored is None:
                raise RuntimeError("loss spike with no checkpoint to restore")
            state = {**restored, "data_position": max(restored["data_position"], skipped_to), "spikes": spikes,
                     "skipped_batches": restored.get("skipped_batches", 0) + 1}
            if metrics:
                metrics.write(json.dumps({"step": state["step"], "event": "spike", "loss": loss_value}) + "\n")
                metrics.flush()
            continue
        recent.append(loss_value)
        if c.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
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
                                      "tokens_seen": state["tokens_seen"]}) + "\n")
            metrics.flush()
        if val is not None and (step % c.eval_every == 0 or step == c.max_steps):
            val_loss = evaluate(objective, val, validation_masker, c, dist_, autocast)
            if dist_.main:
                log.info("step %6d | validation loss %.4f | perplexity %.2f", step, val_loss, math.exp(min(val_loss, 50)))
                metrics.write(json.dumps({"step": step, "val_loss": val_loss, "val_perplexity": math.exp(min(val_loss, 50))}) + "\n")
                metrics.flush()
        if step % c.checkpoint_every == 0 or step == c.max_steps:
            checkpoint()

    final_state, _ = weights.gather()
    if dist_.main:
        metrics.close()
        from hebrew_lm.mlm.export import export_model, plot_curves

        if fsdp:  # export from a plain copy holding the gathered weights
            model = build_model(model_config)
            model.load_state_dict(final_state, strict=False)

        stats = {"parameters": params, "steps": state["step"], "tokens_seen": state["tokens_seen"],
                 "spikes": state["spikes"], "train_sequences": len(train),
                 "wall_seconds": round(time.time() - started, 1), "processes": dist_.world,
                 "gradient_accumulation": accum, "sharding": "fsdp" if fsdp else ("ddp" if ddp else "none")}
        records = read_metrics(out / "metrics.jsonl")
        stats["final_loss"] = next((r["loss"] for r in reversed(records) if "loss" in r and "event" not in r), None)
        stats["final_val_loss"] = next((r["val_loss"] for r in reversed(records) if "val_loss" in r), None)
        export_model(model, tokenizer_dir, out / "model", c, stats)
        plot_curves(records, out / "curves.png")
        atomic_write_json(out / "stats.json", stats)
        atomic_write_text(out / "config.yaml", dump_yaml(to_dict(c)))
        mark_success(out, config_fp, stage="pretrain")
        log.info("pretrain: -> %s", out / "model")
    dist_.barrier()
    return out
