"""The Megatron-Bridge handoff's config: a cpt config, the same curriculum the CPU path trains on."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from hebrew_lm.cpt.config import CptConfig


@dataclass
class MegatronConfig(CptConfig):
    """`hebrew-lm megatron`: a cpt config's curriculum -> Megatron indexed datasets and a blend per phase, for Megatron-Bridge (write it with YAML's merge key beside the cpt section: `megatron: {<<: *cpt}`)."""

    SECTION: typing.ClassVar[str] = "megatron"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {**CptConfig.RUN_DIR_DEFAULTS, "output_dir": "megatron"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.curriculum == "shuffled":  # refused when the config loads, before any data is written
            raise ValueError("megatron.curriculum: shuffled has no phases to hand off, one run per phase; "
                             "give ordered or reversed")
