"""Deduplication: exact (a hash of the normalized text), then near-duplicate MinHash LSH (datasketch).

    index = NearDupIndex(threshold=0.8, num_perm=128)
    sig = MinHasher(num_perm=128, shingle_words=5).signature(text)
    first = index.add(sig)          # None if new, else the ordinal of the document it duplicates

Signatures are computed in worker processes (`MinHasher`); the index lives in the main process and
sees documents in input order, so the first copy of a document is the one kept. datasketch supplies
the permutations and the choice of bands; the hashing loop and the index are ours, for speed and
memory (see the classes).

The LSH bands are chosen by datasketch's optimizer with false negatives weighted 9:1 over false
positives: a corpus stage is judged by the duplicates it misses. At threshold 0.8 with 128
permutations that gives 14 bands of 9 rows, and a pair is caught with probability 0.87 at Jaccard
0.8, 0.98 at 0.85, 0.999 at 0.9, and 0.44 at 0.7 (docs/corpus.md plots the curve).
"""

from __future__ import annotations

import hashlib

import numpy as np
import xxhash
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from hebrew_lm.text.script import shingle_words

LSH_WEIGHTS = (0.1, 0.9)  # (false positive, false negative)
MINHASH_SEED = 1
_SCHEME = "affine32"  # datasketch's: 32-bit values, affine permutations mod 2**32


def exact_digest(text: str) -> bytes:
    """128-bit digest of the normalized text: the exact-duplicate key."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) for this threshold; see the module docstring."""
    return _optimal_param(threshold, num_perm, *LSH_WEIGHTS)


def catch_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one LSH band."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer: spreads the bits of 32-bit values before the affine permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """MinHash signatures of word-shingle sets, in datasketch's `affine32` format.

    datasketch's own MinHash hashes every shingle in a Python loop, which was 60% of the stage's
    time; here each word is hashed once (xxh3) and shingle hashes are combined and permuted in
    numpy, with datasketch's permutations, so the result plugs into its LSH index unchanged.
    """

    BLOCK = 4096  # shingles per block, so a 1M-character document needs ~2 MB, not 100

    def __init__(self, num_perm: int, shingle_words: int) -> None:
        self.num_perm = num_perm
        self.n = shingle_words
        a, b = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=_SCHEME).permutations
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)

    def shingle_hashes(self, text: str) -> np.ndarray:
        """32-bit hashes of the word n-grams (a text shorter than n words is one shingle)."""
        words = shingle_words(text)
        if not words:
            return np.zeros(0, dtype=np.uint32)
        ids = np.fromiter(map(xxhash.xxh3_64_intdigest, map(str.encode, words)), dtype=np.uint64, count=len(words))
        n = min(self.n, len(words))
        with np.errstate(over="ignore"):
            keys = ids[: len(ids) - n + 1].copy()
            for j in range(1, n):
                keys = keys * np.uint64(0x100000001B3) + ids[j : len(ids) - n + 1 + j]
            return ((keys >> np.uint64(32)) ^ keys).astype(np.uint32)

    def shingles(self, text: str) -> set[int]:
        """The shingle set, as hashes: for measuring true Jaccard similarity."""
        return set(self.shingle_hashes(text).tolist())

    def signature(self, text: str) -> np.ndarray:
        hashes = _fmix32(np.unique(self.shingle_hashes(text)))
        signature = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        with np.errstate(over="ignore"):
            for start in range(0, len(hashes), self.BLOCK):
                block = hashes[start : start + self.BLOCK, None]
                np.minimum(signature, (block * self.a + self.b).min(axis=0), out=signature)
        return signature


class NearDupIndex:
    """MinHash LSH over the documents kept so far: one dict per band, from the band's hash to the
    first document that had it.

    datasketch's MinHashLSH keeps a set and a byte string per band entry and a copy of every key,
    4.8 GB per million documents (measured); a plain int -> int dict per band holds the same
    information in about a third of that, which is what lets one machine deduplicate the paper's
    corpus size. The bands and rows still come from datasketch's optimizer.
    """

    def __init__(self, threshold: float, num_perm: int) -> None:
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.tables: list[dict[int, int]] = [{} for _ in range(self.bands)]
        # Multipliers that fold the `rows` values of a band into one 64-bit key.
        self._fold = (np.uint64(0x100000001B3) ** np.arange(self.rows, dtype=np.uint64)).astype(np.uint64)
        self.count = 0

    def band_keys(self, signature: np.ndarray) -> list[int]:
        bands = signature[: self.bands * self.rows].astype(np.uint64).reshape(self.bands, self.rows)
        with np.errstate(over="ignore"):
            return (bands * self._fold).sum(axis=1, dtype=np.uint64).tolist()

    def add(self, signature: np.ndarray) -> int | None:
        """Insert a new document and return None, or return the ordinal of an earlier near-duplicate
        (the earliest one that shares a band with it)."""
        keys = self.band_keys(signature)
        hits = [h for table, key in zip(self.tables, keys) if (h := table.get(key)) is not None]
        if hits:
            return min(hits)
        for table, key in zip(self.tables, keys):
            table[key] = self.count
        self.count += 1
        return None
