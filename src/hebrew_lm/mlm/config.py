"""The masked-LM pretraining stage's config (`hebrew-lm pretrain --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from hebrew_lm.config import bounded
from hebrew_lm.engine.config import CorpusTrainingConfig


@dataclass
class PretrainConfig(CorpusTrainingConfig):
    """`hebrew-lm pretrain`: corpus + tokenizer -> RoBERTa masked-LM encoder (a Hugging Face folder)."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "corpus_dir": "corpus", "tokenizer_dir": "tokenizer", "output_dir": "pretrain", "cache_dir": "cache"}

    model: Literal["tiny", "small", "base", "large"] = "base"
    """Model preset: tiny (2 layers, 128 hidden), small (4, 256), base (12, 768: the paper's 126M), large (24, 1024: 357M)."""
    max_seq_len: int = bounded("[8, 1000000]", 512)
    """Tokens per training sequence, <s> and </s> included (the paper: 512)."""
    mlm_probability: float = bounded("(0, 1)", 0.15)
    """Share of tokens chosen for prediction each time a sequence is seen (80% <mask>, 10% random, 10% kept). Validation always masks 15% of single tokens, so perplexities of different recipes compare."""
    whole_word_masking: bool = False
    """Choose whole words (all their BPE pieces together) instead of single tokens."""
    dropout: float = bounded("[0, 1)", 0.1)
    """Dropout on hidden states and attention probabilities."""

    SECTION: typing.ClassVar[str] = "pretrain"
