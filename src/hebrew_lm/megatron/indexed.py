"""Megatron's indexed dataset format (megatron-core's `indexed_dataset.py`), written from our token stores.

    write_indexed_dataset("out/data/hebrew-formal", documents, vocab_size)   # -> .bin and .idx

A prefix is two files: PREFIX.bin, every sequence's token ids back to back, and PREFIX.idx: the header
`MMIDIDX\\0\\0`, version 1, the ids' dtype code, the sequence and document counts, then each sequence's
length (int32), its byte offset in .bin (int64) and the sequence indices that end each document (int64).
One sequence is one document here. The ids are uint16 while the vocabulary fits (65,500 ids, megatron-core's
own cut), int32 beyond. Written by hand, not with megatron-core's builder: it is six arrays, the ids are
already tokenized in our store, and megatron-core is a test dependency only (docs/decisions.md).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hebrew_lm.runs import atomic_write_bytes

HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


def ids_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size < 65500 else np.dtype(np.int32)


def write_indexed_dataset(prefix: Path, documents: Iterable[np.ndarray], vocab_size: int) -> dict[str, int]:
    """PREFIX.bin and PREFIX.idx of `documents` (one token-id array each); their document and token counts."""
    dtype = ids_dtype(vocab_size)
    lengths, chunks = [], []
    for doc in documents:
        lengths.append(len(doc))
        chunks.append(np.asarray(doc, dtype=dtype).tobytes())
    pointers = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]]) * dtype.itemsize if lengths \
        else np.zeros(0, dtype=np.int64)
    index = b"".join([HEADER, struct.pack("<Q", 1), struct.pack("<B", DTYPE_CODES[dtype]),
                      struct.pack("<Q", len(lengths)), struct.pack("<Q", len(lengths) + 1),
                      np.asarray(lengths, dtype=np.int32).tobytes(), np.asarray(pointers, dtype=np.int64).tobytes(),
                      np.arange(len(lengths) + 1, dtype=np.int64).tobytes()])
    atomic_write_bytes(Path(f"{prefix}.bin"), b"".join(chunks))
    atomic_write_bytes(Path(f"{prefix}.idx"), index)
    return {"documents": len(lengths), "tokens": int(sum(lengths))}
