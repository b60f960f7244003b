"""Causal-LM data: a token store (`hebrew_lm.engine.token_store`) cut at its document ends, each document
into pieces of at most `max_seq_len` tokens, and micro-batches of pieces padded on the right (the
engine's stream groups pieces of about one length into a step: `hebrew_lm.engine.stream`).

    data = DocumentPieces(store, max_seq_len=1024)
    ids, mask = pad_batch([data[i] for i in indices], pad_id)

A piece is one row: documents are never packed into one sequence, because plain attention would let
them see each other (and NemotronH's CPU path refuses packed input); only documents that belong
together (a book's chapters, given as `units`) are read as one. Packing with per-document
boundaries is for GPU varlen kernels (docs/decoder.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hebrew_lm.engine.token_store import load_tokens


class DocumentPieces(torch.utils.data.Dataset):
    """Each document (its tokens and its end-of-sequence token) cut into pieces of at most max_seq_len;
    a last piece of one token (nothing to predict) is dropped and counted. With `bos` (a base whose
    tokenizer starts every text with it: Gemma, Llama 2), each document's first piece starts with it, as
    the base saw text in its own training; the rest of a long document's pieces do not.

    `units` reads several documents as one, in the order given (a book's chapters: the long documents
    of a context-extension phase); a piece may then run across a document's end token into the next
    chapter. None: every document alone."""

    def __init__(self, store: str | Path, max_seq_len: int, units: list[list[int]] | None = None,
                 bos: int | None = None) -> None:
        self.tokens = load_tokens(store)
        meta = json.loads((Path(store) / "meta.json").read_text(encoding="utf-8"))
        if "eos_id" not in meta:
            raise ValueError(f"{store}: a token store from before documents recorded their end token; delete it")
        ends = np.flatnonzero(np.asarray(self.tokens) == meta["eos_id"]) + 1
        spans = list(zip(np.concatenate([[0], ends[:-1]]).tolist(), ends.tolist()))
        self.num_documents = len(ends)
        pieces, documents, lengths = [], [], []
        self.joined: dict[int, list[tuple[int, int]]] = {}
        """A piece that crosses documents: its (start, end) segments in the store."""
        self.dropped_tokens = 0
        self.bos = bos
        self.opening: set[int] = set()
        """The pieces that open a document (or unit): they start with `bos`, when there is one."""
        for unit in units if units is not None else ([d] for d in range(len(spans))):
            for n, segments in enumerate(_cut([spans[d] for d in unit], max_seq_len, first=bos is not None)):
                length = sum(e - s for s, e in segments) + (1 if bos is not None and n == 0 else 0)
                if length < 2:
                    self.dropped_tokens += length
                    continue
                if bos is not None and n == 0:
                    self.opening.add(len(pieces))
                if len(segments) > 1:
                    self.joined[len(pieces)] = segments
                first = segments[0][0]
                pieces.append(segments[0])
                lengths.append(length)
                documents.append(next(d for d in unit if spans[d][0] <= first < spans[d][1]))
        self.pieces = np.asarray(pieces, dtype=np.int64).reshape(-1, 2)
        """Each piece's (start, end) in the store; a joined piece's first segment (see `joined`)."""
        self._lengths = np.asarray(lengths, dtype=np.int64)
        self.documents = np.asarray(documents, dtype=np.int64)
        """Each piece's document (the one it starts in): its row in the corpus split (the store keeps the corpus's order)."""

    def __len__(self) -> int:
        return len(self.pieces)

    def __getitem__(self, i: int) -> torch.Tensor:
        segments = self.joined.get(i) or [self.pieces[i]]
        ids = np.concatenate([self.tokens[s:e] for s, e in segments]).astype(np.int64)
        if i in self.opening:
            ids = np.concatenate([[self.bos], ids])
        return torch.from_numpy(ids)

    def lengths(self) -> np.ndarray:
        return self._lengths

    def num_tokens(self) -> int:
        return int(self.lengths().sum())


def _cut(segments: list[tuple[int, int]], size: int, first: bool = False):
    """The segments' tokens, read in order, cut every `size` tokens: each piece as its list of (start, end);
    with `first`, the first piece holds one token less (room for the BOS put before it)."""
    piece, filled = [], 1 if first else 0
    for start, end in segments:
        while start < end:
            take = min(end - start, size - filled)
            piece.append((start, start + take))
            filled, start = filled + take, start + take
            if filled == size:
                yield piece
                piece, filled = [], 0
    if piece:
        yield piece


def pad_batch(pieces: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of the pieces, right-padded to the longest."""
    width = max(len(p) for p in pieces)
    ids = torch.full((len(pieces), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pieces), width), dtype=torch.long)
    for row, piece in enumerate(pieces):
        ids[row, : len(piece)] = piece
        mask[row, : len(piece)] = 1
    return ids, mask


def opening_bos(tokenizer) -> int | None:
    """The BOS id a tokenizer starts every text with (Gemma's `<bos>`), or None when it adds none."""
    ids = tokenizer("a")["input_ids"]
    bos = tokenizer.bos_token_id
    return bos if bos is not None and ids and ids[0] == bos else None


def base_bos(tokenizer_dir: str | Path) -> int | None:
    """`opening_bos` of the tokenizer in a folder."""
    from transformers import AutoTokenizer

    return opening_bos(AutoTokenizer.from_pretrained(str(tokenizer_dir)))
