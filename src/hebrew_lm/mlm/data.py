"""Masked-LM data: RoBERTa's FULL-SENTENCES packing of a token store (`hebrew_lm.engine.token_store`) into
fixed-length sequences with no padding.

    data = PackedSequences(store, max_seq_len=512)     # data[i]: <s> + 510 tokens + </s>
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hebrew_lm.tokenizer.specials import BOS, EOS, SPECIAL_TOKENS
from hebrew_lm.engine.token_store import load_tokens


class PackedSequences(torch.utils.data.Dataset):
    """Consecutive runs of `max_seq_len - 2` tokens, each wrapped in <s> ... </s>. Documents follow each
    other across sequence boundaries, separated by </s> (RoBERTa's FULL-SENTENCES); the last partial
    run is dropped, so no position is padding."""

    def __init__(self, store: str | Path, max_seq_len: int) -> None:
        self.tokens = load_tokens(store)
        self.span = max_seq_len - 2
        if self.span < 1:
            raise ValueError(f"max_seq_len must be at least 3, got {max_seq_len}")
        if len(self.tokens) < self.span:
            raise ValueError(
                f"{store}: {len(self.tokens):,} tokens are fewer than one sequence of {max_seq_len}; "
                f"use a larger corpus or a smaller max_seq_len"
            )
        self.bos, self.eos = SPECIAL_TOKENS.index(BOS), SPECIAL_TOKENS.index(EOS)

    def __len__(self) -> int:
        return len(self.tokens) // self.span

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self):
            raise IndexError(i)
        body = torch.from_numpy(self.tokens[i * self.span : (i + 1) * self.span].astype(np.int64))
        return torch.cat([torch.tensor([self.bos]), body, torch.tensor([self.eos])])
