"""Causal-LM data: a token store (`hebrew_lm.tokens.store`) cut at its document ends, each document
into pieces of at most `max_seq_len` tokens, and micro-batches of pieces padded on the right (the
engine's stream groups pieces of about one length into a step: `hebrew_lm.tokens.stream`).

    data = DocumentPieces(store, max_seq_len=1024)
    ids, mask = pad_batch([data[i] for i in indices], pad_id)

A piece is one row: documents are never packed into one sequence, because plain attention would let
them see each other (and NemotronH's CPU path refuses packed input). Packing with per-document
boundaries is for GPU varlen kernels (docs/decoder.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hebrew_lm.tokens.store import load_tokens


class DocumentPieces(torch.utils.data.Dataset):
    """Each document (its tokens and its end-of-sequence token) cut into pieces of at most max_seq_len;
    a last piece of one token (nothing to predict) is dropped and counted."""

    def __init__(self, store: str | Path, max_seq_len: int) -> None:
        self.tokens = load_tokens(store)
        meta = json.loads((Path(store) / "meta.json").read_text(encoding="utf-8"))
        if "eos_id" not in meta:
            raise ValueError(f"{store}: a token store from before documents recorded their end token; delete it")
        ends = np.flatnonzero(np.asarray(self.tokens) == meta["eos_id"]) + 1
        starts = np.concatenate([[0], ends[:-1]])
        pieces, documents = [], []
        self.dropped_tokens = 0
        for doc, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
            for s in range(start, end, max_seq_len):
                e = min(s + max_seq_len, end)
                if e - s >= 2:
                    pieces.append((s, e))
                    documents.append(doc)
                else:
                    self.dropped_tokens += e - s
        self.pieces = np.asarray(pieces, dtype=np.int64).reshape(-1, 2)
        self.documents = np.asarray(documents, dtype=np.int64)
        """Each piece's document: its row in the corpus split (the store keeps the corpus's order)."""
        self.num_documents = len(ends)

    def __len__(self) -> int:
        return len(self.pieces)

    def __getitem__(self, i: int) -> torch.Tensor:
        start, end = self.pieces[i]
        return torch.from_numpy(self.tokens[start:end].astype(np.int64))

    def lengths(self) -> np.ndarray:
        return self.pieces[:, 1] - self.pieces[:, 0]

    def num_tokens(self) -> int:
        return int(self.lengths().sum())


def pad_batch(pieces: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of the pieces, right-padded to the longest."""
    width = max(len(p) for p in pieces)
    ids = torch.full((len(pieces), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pieces), width), dtype=torch.long)
    for row, piece in enumerate(pieces):
        ids[row, : len(piece)] = piece
        mask[row, : len(piece)] = 1
    return ids, mask
