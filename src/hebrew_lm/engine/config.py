"""What the training engine needs from any training stage (`TrainingConfig`), and the folders of a
stage that trains on a corpus with a tokenizer (`CorpusTrainingConfig`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from hebrew_lm.config import bounded, check_ranges


@dataclass(kw_only=True)
class TrainingConfig:
    """What the training engine (`hebrew_lm.engine`) needs from any training stage: batch, schedule,
    optimizer, precision, checkpoints, spikes. Defaults are the HalleluBERT paper's (RoBERTa's)."""

    SECTION: typing.ClassVar[str] = "train"

    global_batch_size: int = bounded("[1, inf)", 8192)
    """Sequences per optimizer step over all processes (the paper: 8,192); must be micro_batch_size x processes x a whole number."""
    micro_batch_size: int = bounded("[1, inf)", 16)
    """Sequences per forward pass on one process; gradient accumulation makes up the rest of the global batch."""
    max_steps: int = bounded("[1, inf)", 100_000)
    """Optimizer steps (the paper: 100,000)."""
    warmup_steps: int = bounded("[0, inf)", 10_000)
    """Steps of linear warmup from 0 to the peak learning rate (the paper: 10,000)."""
    learning_rate: float = bounded("(0, 1]", 4e-4)
    """Peak learning rate (the paper: 4e-4 for base, 1.5e-4 for large)."""
    lr_decay_power: float = bounded("[0, 100]", 1.0)
    """Polynomial decay from the peak to 0 after warmup; 1.0 is linear (fairseq's polynomial_decay with power 1)."""
    adam_beta1: float = bounded("[0, 1)", 0.9)
    """AdamW beta1."""
    adam_beta2: float = bounded("[0, 1)", 0.98)
    """AdamW beta2 (RoBERTa: 0.98)."""
    adam_eps: float = bounded("(0, 1]", 1e-6)
    """AdamW epsilon (RoBERTa: 1e-6)."""
    weight_decay: float = bounded("[0, 1]", 0.01)
    """Weight decay, not applied to biases and LayerNorm weights."""
    grad_clip: float = bounded("[0, inf)", 0.0)
    """Clip the gradient norm to this; 0 turns clipping off (the paper's recipe has none)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """fp32 (the paper), bf16 autocast, or fp16 autocast with loss scaling (CUDA)."""
    compile: bool = False
    """torch.compile the model (about 10% on CPU; more on GPU)."""
    fsdp: bool = False
    """Under torchrun, shard parameters, gradients and optimizer state across processes (FSDP2, one unit per layer) instead of replicating them (DDP): for the large preset."""
    seed: int = bounded("[0, 4294967295]", 0)
    """Seed of initialization, data order, masking and dropout."""
    log_every: int = bounded("[1, inf)", 10)
    """Steps between log lines and metrics.jsonl records."""
    eval_every: int = bounded("[1, inf)", 500)
    """Steps between validation loss and perplexity measurements (and at the end)."""
    eval_batches: int = bounded("[1, inf)", 20)
    """Micro-batches of the validation split per measurement (the same ones, masked the same way, every time)."""
    checkpoint_every: int = bounded("[1, inf)", 1000)
    """Steps between checkpoints (and one at the end)."""
    keep_checkpoints: int = bounded("[1, inf)", 3)
    """Newest checkpoints kept; older ones are deleted."""
    spike_factor: float = bounded("[0, inf)", 5.0)
    """A loss above this many times the median of recent losses, or, in a run's first ten steps, more than ln(this) nats above its first loss (a divergence in the first steps), or not finite, restores the last checkpoint and skips the offending batch; three such spikes without getting past the step of the first stop the run (the learning rate diverges it); 0 turns this off."""
    resume: Literal["auto", "never"] = "auto"
    """auto: continue from the newest good checkpoint in output_dir; never: start over."""

    def __post_init__(self) -> None:
        where = self.SECTION
        check_ranges(self, where)
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"{where}.global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"{where}.micro_batch_size ({self.micro_batch_size})"
            )
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"{where}.warmup_steps must lie in [0, max_steps={self.max_steps}], got {self.warmup_steps}")
        if 0 < self.spike_factor <= 1:
            raise ValueError(f"{where}.spike_factor must be 0 (off) or above 1 (a multiple of the median loss), "
                             f"got {self.spike_factor}")


@dataclass
class CorpusTrainingConfig(TrainingConfig):
    """A training stage that reads a corpus with a tokenizer: its folders."""

    corpus_dir: str
    """A finished corpus stage folder (default: RUN_DIR/corpus)."""
    tokenizer_dir: str
    """A tokenizer folder with tokenizer.json; its end-of-sequence token ends every document (default: RUN_DIR/tokenizer)."""
    output_dir: str
    """Folder for checkpoints, metrics and the exported model in OUTPUT/model (default: RUN_DIR/STAGE)."""
    cache_dir: str
    """Where tokenized corpora are kept, named by the corpus and tokenizer that made them (default: RUN_DIR/cache)."""
