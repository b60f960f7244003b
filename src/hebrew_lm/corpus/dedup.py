"""Deduplication: exact (a hash of the normalized text), then near-duplicate MinHash LSH (datasketch).

    index = NearDupIndex(threshold=0.8, num_perm=128)
    sig = MinHasher(num_perm=128, shingle_words=5).signature(text)
    first = index.add(sig)          # None if new, else the ordinal of the document it duplicates

Signatures are computed in worker processes (`MinHasher`); the index lives in the main process and
sees documents in input order, so the first copy of a document is the one kept.

The LSH bands are chosen by datasketch's optimizer with false negatives weighted 9:1 over false
positives: a corpus stage is judged by the duplicates it misses. At threshold 0.8 with 128
permutations that gives 14 bands of 9 rows, and a pair is caught with probability 0.87 at Jaccard
0.8, 0.98 at 0.85, 0.999 at 0.9, and 0.44 at 0.7 (docs/corpus.md plots the curve).
"""

from __future__ import annotations

import hashlib

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from hebrew_lm.text.script import shingle_words

LSH_WEIGHTS = (0.1, 0.9)  # (false positive, false negative)
MINHASH_SEED = 1
_SCHEME = "affine32"


def exact_digest(text: str) -> bytes:
    """128-bit digest of the normalized text: the exact-duplicate key."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) for this threshold; see the module docstring."""
    return _optimal_param(threshold, num_perm, *LSH_WEIGHTS)


def catch_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one LSH band."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def _hash32(data: bytes) -> int:
    return xxhash.xxh32_intdigest(data)


class MinHasher:
    """MinHash signatures of word-shingle sets, with datasketch's permutations computed once."""

    def __init__(self, num_perm: int, shingle_words: int) -> None:
        self.num_perm = num_perm
        self.n = shingle_words
        self.permutations = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=_SCHEME).permutations

    def shingles(self, text: str) -> set[bytes]:
        words = shingle_words(text)
        n = self.n
        if len(words) <= n:
            return {" ".join(words).encode("utf-8")} if words else set()
        return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}

    def signature(self, text: str) -> np.ndarray:
        m = MinHash(num_perm=self.num_perm, seed=MINHASH_SEED, hashfunc=_hash32,
                    permutations=self.permutations, scheme=_SCHEME)
        m.update_batch(list(self.shingles(text)))
        return m.hashvalues.astype(np.uint32)


class NearDupIndex:
    """MinHash LSH over the documents kept so far."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        self.bands, self.rows = lsh_params(threshold, num_perm)
        # Band keys are hashed to 8 bytes so the index costs less memory per document.
        self.lsh = MinHashLSH(num_perm=num_perm, params=(self.bands, self.rows), hashfunc=xxhash.xxh64_digest)
        self.count = 0

    def add(self, signature: np.ndarray) -> int | None:
        """Insert a new document and return None, or return the ordinal of an earlier near-duplicate."""
        m = LeanMinHash(seed=MINHASH_SEED, hashvalues=signature.astype(np.uint64), scheme=_SCHEME)
        hits = self.lsh.query(m)
        if hits:
            return min(hits)
        self.lsh.insert(self.count, m, check_duplication=False)
        self.count += 1
        return None
