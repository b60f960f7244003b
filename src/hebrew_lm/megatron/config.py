"""The Megatron-Bridge handoff's config: a cpt config, the same curriculum the CPU path trains on, plus the
cluster the runs are written for."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from hebrew_lm.config import bounded
from hebrew_lm.cpt.config import CptConfig


@dataclass
class MegatronConfig(CptConfig):
    """`hebrew-lm megatron`: a cpt config's curriculum -> Megatron indexed datasets, a blend per phase and the Megatron-Bridge scripts that run it, for a GPU cluster (write it with YAML's merge key beside the cpt section: `megatron: {<<: *cpt}`)."""

    SECTION: typing.ClassVar[str] = "megatron"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {**CptConfig.RUN_DIR_DEFAULTS, "output_dir": "megatron"}

    recipe: str = "nemotron_3_nano_pretrain_8gpu_h100_bf16_config"
    """Megatron-Bridge's recipe each phase run starts from (`run_recipe.py --recipe`), then overridden with the
    phase's data, steps, batch, learning rate schedule, parallelism and checkpoints."""
    sft_recipe: str = "nemotron_3_nano_sft_8gpu_h100_bf16_config"
    """Megatron-Bridge's recipe the SFT run starts from."""
    nodes: int = bounded("[1, inf)", 1)
    """Nodes of each run."""
    gpus_per_node: int = bounded("[1, inf)", 8)
    """GPUs a node."""
    tensor_parallel: int = bounded("[1, inf)", 1)
    """Tensor parallelism (Megatron-Bridge's advice for Nemotron-3: TP 1 or 2 with EP 8, never TP 8 without EP)."""
    pipeline_parallel: int = bounded("[1, inf)", 1)
    """Pipeline parallelism."""
    expert_parallel: int = bounded("[1, inf)", 8)
    """Expert parallelism: each routed expert lives on one of this many devices."""
    device_batch_size: int = bounded("[1, inf)", 1)
    """Sequences per GPU per forward pass in the Megatron runs (their micro-batch; global_batch_size is the
    cpt section's)."""
    sft_inputs: list[str] = field(default_factory=lambda: ["embedded:sft-demo"])
    """Conversations of the SFT run (JSONL files of `messages` or `prompt`/`completion`, and/or embedded:sft-demo),
    written as Megatron-Bridge's chat SFT files (sft/training.jsonl, sft/validation.jsonl); empty: no SFT run."""
    sft_steps: int = bounded("[1, inf)", 1000)
    """Iterations of the SFT run."""
    sft_global_batch_size: int = bounded("[1, inf)", 128)
    """Conversations per SFT iteration."""
    sft_max_seq_len: int = bounded("[16, inf)", 2048)
    """Longest conversation of the SFT run in tokens."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.curriculum == "shuffled":  # refused when the config loads, before any data is written
            raise ValueError("megatron.curriculum: shuffled has no phases to hand off, one run per phase; "
                             "give ordered or reversed")
        world = self.nodes * self.gpus_per_node
        model_parallel = self.tensor_parallel * self.pipeline_parallel
        if world % model_parallel:
            raise ValueError(f"megatron: {world} GPUs ({self.nodes} x {self.gpus_per_node}) do not divide into tensor "
                             f"x pipeline parallel groups of {model_parallel}")
        if (world // self.pipeline_parallel) % self.expert_parallel:
            raise ValueError(f"megatron.expert_parallel: {self.expert_parallel} does not divide the "
                             f"{world // self.pipeline_parallel} GPUs of a pipeline stage")
        data_parallel = world // model_parallel
        for name, batch in (("global_batch_size", self.global_batch_size), ("sft_global_batch_size", self.sft_global_batch_size)):
            if batch % (data_parallel * self.device_batch_size):
                raise ValueError(f"megatron.{name}: {batch} is not a multiple of {data_parallel} data-parallel ranks x "
                                 f"device_batch_size {self.device_batch_size}")
