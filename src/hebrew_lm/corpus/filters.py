"""Document filters: each returns the reason a document is dropped, or None to keep it.

    reason = too_short(text, min_words=5)   # 'too_short' or None

The repetition thresholds are Gopher's (Rae et al. 2021, table A1); the boilerplate rules are ours,
written for Hebrew and English web pages. docs/corpus.md lists every reason.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from hebrew_lm.corpus.config import CorpusConfig
from hebrew_lm.text.script import hebrew_letter_ratio

# Gopher: the most frequent n-gram may cover at most this share of the characters ...
TOP_NGRAM_MAX_FRACTION = {2: 0.20, 3: 0.18, 4: 0.16}
# ... and the n-grams that occur more than once at most this share.
DUP_NGRAM_MAX_FRACTION = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
DUP_LINE_MAX_FRACTION = 0.30
DUP_LINE_CHAR_MAX_FRACTION = 0.20

_URL_LINE = re.compile(r"^\W*(https?://|www\.)\S+\W*$", re.IGNORECASE)
_MENU_SEPARATORS = re.compile(r"\s[|•·»›>/]\s")
_BOILERPLATE_PHRASES = re.compile(
    "|".join(
        [
            "כל הזכויות שמורות", "לחצו כאן", "לחץ כאן", "קראו עוד", "קרא עוד", "המשך קריאה",
            "שתפו", "שתף", "הירשמו", "הרשמו לניוזלטר", "מדיניות פרטיות", "מדיניות הפרטיות",
            "תנאי שימוש", "עוגיות", "דלג לתוכן", "חזרה לראש העמוד", "צור קשר", "תגובות",
            "all rights reserved", "read more", "click here", "privacy policy", "terms of use",
            "cookies", "skip to content", "subscribe", "share this",
        ]
    ),
    re.IGNORECASE,
)
# A stock phrase marks a line as boilerplate only when it is most of that line, so that a sentence
# such as "הם שתפו פעולה עם המשטרה" (they cooperated with the police) is not taken for a share button.
PHRASE_MIN_SHARE = 0.5


def too_long(text: str, max_chars: int) -> str | None:
    return "too_long" if len(text) > max_chars else None


def too_short(text: str, min_words: int) -> str | None:
    return "too_short" if len(text.split()) < min_words else None


def low_hebrew_ratio(text: str, min_ratio: float) -> str | None:
    return "low_hebrew_ratio" if hebrew_letter_ratio(text) < min_ratio else None


def is_boilerplate_line(line: str) -> bool:
    """A bare URL, a menu (three or more short items between separators), or a short line that is a
    stock phrase of web pages ('all rights reserved', 'read more', ...)."""
    stripped = line.strip()
    if not stripped:
        return False
    if _URL_LINE.match(stripped):
        return True
    words = stripped.split()
    if len(_MENU_SEPARATORS.findall(f" {stripped} ")) >= 3:
        items = [i for i in re.split(r"\s[|•·»›>/]\s", stripped) if i.strip()]
        if items and sum(len(i.split()) for i in items) / len(items) <= 3:
            return True
    if len(words) > 8:
        return False
    if "©" in stripped:
        return True
    phrase_chars = sum(len(m.group(0)) for m in _BOILERPLATE_PHRASES.finditer(stripped))
    return phrase_chars / len(stripped) >= PHRASE_MIN_SHARE


def remove_boilerplate_lines(text: str, max_fraction: float) -> tuple[str, int, str | None]:
    """(text without boilerplate lines, lines removed, 'boilerplate' if they were too much of it)."""
    lines = text.split("\n")
    kept = [line for line in lines if not is_boilerplate_line(line)]
    removed = len(lines) - len(kept)
    if not removed:
        return text, 0, None
    nonblank = sum(1 for line in lines if line.strip())
    cleaned = "\n".join(kept).strip()
    if not cleaned or removed / max(1, nonblank) > max_fraction:
        return cleaned, removed, "boilerplate"
    return cleaned, removed, None


def _ngram_keys(word_ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 key per n-gram (position i covers words i..i+n-1), by polynomial hashing."""
    keys = word_ids[: len(word_ids) - n + 1].copy()
    for j in range(1, n):
        keys = keys * np.uint64(0x100000001B3) + word_ids[j : len(word_ids) - n + 1 + j]
    return keys


def repetition(text: str, min_words: int, tolerance: float = 1.0) -> str | None:
    """Gopher's repetition rules: duplicate lines, then the top 2-4-gram and duplicate 5-10-gram shares.
    `tolerance` multiplies every threshold.

    N-grams are compared by 64-bit keys built from the words' hashes, in numpy; only equality
    within one document matters, so Python's per-process string hash is fine here.
    """
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        counts = Counter(lines)
        dup_lines = sum(c - 1 for c in counts.values() if c > 1)
        dup_chars = sum(len(line) * (c - 1) for line, c in counts.items() if c > 1)
        if (dup_lines / len(lines) > DUP_LINE_MAX_FRACTION * tolerance
                or dup_chars / max(1, len(text)) > DUP_LINE_CHAR_MAX_FRACTION * tolerance):
            return "repetition_lines"
    words = text.split()
    if len(words) < max(min_words, 2):
        return None
    with np.errstate(over="ignore"):
        ids = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        total_chars = int(lengths.sum())
        for n, limit in TOP_NGRAM_MAX_FRACTION.items():
            if len(words) < n:
                break
            _, first, counts = np.unique(_ngram_keys(ids, n), return_index=True, return_counts=True)
            top = int(np.argmax(counts))
            if counts[top] > 1:
                start = int(first[top])
                if int(lengths[start : start + n].sum()) * int(counts[top]) / total_chars > limit * tolerance:
                    return "repetition_ngrams"
        for n, limit in DUP_NGRAM_MAX_FRACTION.items():
            if len(words) < n:
                break
            _, inverse, counts = np.unique(_ngram_keys(ids, n), return_inverse=True, return_counts=True)
            repeated = counts[inverse] > 1
            if not repeated.any():
                break  # no repeated n-gram means no repeated longer one either
            # a word is covered when any repeated n-gram starting at one of the n positions before it covers it
            covered = np.convolve(repeated.astype(np.int64), np.ones(n, dtype=np.int64))[: len(words)] > 0
            if int(lengths[covered].sum()) / total_chars > limit * tolerance:
                return "repetition_ngrams"
    return None


class DocumentFilter:
    """Every filter the config switches on, in the order their reasons are checked.

    `__call__(text) -> (text, reason, boilerplate lines removed)`; the text may lose boilerplate lines.
    """

    def __init__(self, config: CorpusConfig) -> None:
        self.config = config

    def __call__(self, text: str) -> tuple[str, str | None, int]:
        c = self.config
        if reason := too_long(text, c.max_chars):
            return text, reason, 0
        removed = 0
        if c.boilerplate_filter:
            text, removed, reason = remove_boilerplate_lines(text, c.max_boilerplate_line_fraction)
            if reason:
                return text, reason, removed
        for reason in (
            too_short(text, c.min_words),
            low_hebrew_ratio(text, c.min_hebrew_ratio),
            repetition(text, c.repetition_min_words, c.repetition_tolerance) if c.repetition_filter else None,
        ):
            if reason:
                return text, reason, removed
        return text, None, removed
