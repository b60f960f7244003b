"""Script detection and word splitting for Hebrew text.

    >>> hebrew_letter_ratio("שלום world")
    0.5
"""

from __future__ import annotations

import re

from hebrew_lm.text.normalize import HEBREW_LETTERS

_NOT_LETTER = re.compile(r"[\W\d_]+")
_DROP_HEBREW = str.maketrans("", "", HEBREW_LETTERS)
# Words for shingling: runs of letters and digits, so punctuation and quoting do not change a shingle.
_WORD = re.compile(r"\w+")


def hebrew_letter_ratio(text: str) -> float:
    """Share of the letters in `text` that are Hebrew letters (0.0 when it has no letters)."""
    letters = _NOT_LETTER.sub("", text)
    if not letters:
        return 0.0
    hebrew = len(letters) - len(letters.translate(_DROP_HEBREW))
    return hebrew / len(letters)


def shingle_words(text: str) -> list[str]:
    """Lower-cased letter/digit runs: the units of near-duplicate shingles."""
    return _WORD.findall(text.lower())
