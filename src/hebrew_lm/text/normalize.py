"""Hebrew text normalization: pure `str -> str` functions and one composed normalizer.

    >>> from hebrew_lm.text.normalize import Normalizer
    >>> Normalizer().normalize("צה״ל\u200f  בְּרֵאשִׁ֖ית")
    'צה"ל בראשית'

Each rule is documented, with its reasons, in docs/normalization.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import re
import unicodedata


@dataclass
class NormalizeConfig:
    """Hebrew text normalization, applied to every document before filtering and deduplication.

    Each rule is a pure function in `hebrew_lm.text.normalize`; docs/normalization.md explains them.
    """

    nfc: bool = True
    """Unicode NFC, so that a letter with points has one spelling (also decomposes presentation forms such as U+FB2A)."""
    strip_cantillation: bool = True
    """Remove cantillation marks (te'amim, U+0591-U+05AF): they never occur in modern text."""
    strip_niqqud: bool = True
    """Remove vowel points and other pointing (niqqud, dagesh, shin/sin dots, U+05B0-U+05C7). Set false to keep them."""
    unify_quotes: bool = True
    """Map geresh ׳ and gershayim ״ (and typographic quotes) to ASCII ' and ", the way most Hebrew is typed: צה״ל -> צה"ל."""
    maqaf_to_hyphen: bool = True
    """Map the Hebrew maqaf ־ (U+05BE) to an ASCII hyphen, the way modern text writes compounds."""
    strip_invisibles: bool = True
    """Remove bidi controls (LRM, RLM, embeddings, isolates), zero-width characters, BOM and soft hyphens (an emoji's joiner is kept)."""
    unify_whitespace: bool = True
    """Turn every Unicode space into ' ', collapse runs, trim lines, keep single line breaks and at most one blank line."""


HEBREW_LETTERS = "".join(chr(c) for c in range(0x05D0, 0x05EB))  # א..ת, final forms included

# Cantillation marks (te'amim): U+0591..U+05AF.
CANTILLATION = "".join(chr(c) for c in range(0x0591, 0x05B0))
# Vowel points and other pointing: sheva..meteg, rafe, shin/sin dots, upper/lower dots, qamats qatan,
# and the Judeo-Spanish varika. Punctuation in the same block (maqaf U+05BE, paseq U+05C0,
# sof pasuq U+05C3, nun hafukha U+05C6) is not pointing and is kept.
NIQQUD = (
    "".join(chr(c) for c in range(0x05B0, 0x05BE))
    + "\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\ufb1e"
)
MAQAF = "\u05be"
# Geresh and gershayim, and the typographic quotes people type in their place.
SINGLE_QUOTES = "\u05f3\u2018\u2019\u201a\u201b\u2032"
DOUBLE_QUOTES = "\u05f4\u201c\u201d\u201e\u201f\u2033"
# Bidi controls, zero-width space/non-joiner, word joiner, invisible operators, BOM, soft hyphen,
# Mongolian vowel separator. The zero-width joiner is handled apart (emoji sequences need it).
INVISIBLES = (
    "\u200e\u200f\u061c"  # LRM, RLM, ALM
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
    "\u200b\u200c\u2060\u2061\u2062\u2063\u2064"
    "\ufeff\u00ad\u180e"
)
ZWJ = "\u200d"
# A joiner survives only when an emoji (or a gender/profession sign) follows it.
_STRAY_ZWJ = re.compile("\u200d(?![\u2600-\u27bf\U0001f000-\U0001faff])")
# Tab and every Unicode space separator become an ASCII space; line breaks are handled apart. The
# classes are spelled out (not \s) so that this module and the tokenizer's normalizer, which uses
# another regex engine, agree on them exactly.
SPACE_CLASS = "\t \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
LINE_BREAK_PATTERN = "\r\n?|[\u2028\u2029\u000b\u000c\u0085]"
_SPACES = re.compile(f"[{SPACE_CLASS}]{{2,}}|[{SPACE_CLASS.replace(' ', '')}]")  # runs, or a space that is not ' '
_LINE_BREAKS = re.compile(LINE_BREAK_PATTERN)
_BLANK_RUNS = re.compile(r"\n{3,}")

_CANTILLATION_TABLE = str.maketrans("", "", CANTILLATION)
_NIQQUD_TABLE = str.maketrans("", "", NIQQUD)
_QUOTES_TABLE = str.maketrans({**{c: "'" for c in SINGLE_QUOTES}, **{c: '"' for c in DOUBLE_QUOTES}})
_INVISIBLES_TABLE = str.maketrans("", "", INVISIBLES)


# str.translate looks up every character in a dict (~80 ns each); a regex search for the characters
# a table touches runs in C at ~1 GB/s, so each table is applied only to text that needs it.
def _chars(chars: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(chars) + "]")


_HAS_CANTILLATION = _chars(CANTILLATION)
_HAS_NIQQUD = _chars(NIQQUD)
_HAS_QUOTES = _chars(SINGLE_QUOTES + DOUBLE_QUOTES)
_HAS_INVISIBLES = _chars(INVISIBLES + ZWJ)


def nfc(text: str) -> str:
    """Unicode NFC. Hebrew presentation forms with points (U+FB1D..U+FB4E) decompose under it."""
    return unicodedata.normalize("NFC", text)


def strip_cantillation(text: str) -> str:
    """Remove te'amim (U+0591..U+05AF)."""
    return text.translate(_CANTILLATION_TABLE) if _HAS_CANTILLATION.search(text) else text


def strip_niqqud(text: str) -> str:
    """Remove vowel points, dagesh, shin/sin dots and the other pointing marks."""
    return text.translate(_NIQQUD_TABLE) if _HAS_NIQQUD.search(text) else text


def unify_quotes(text: str) -> str:
    """Geresh ׳ and typographic single quotes -> ', gershayim ״ and typographic double quotes -> "."""
    return text.translate(_QUOTES_TABLE) if _HAS_QUOTES.search(text) else text


def maqaf_to_hyphen(text: str) -> str:
    """Maqaf ־ -> '-'."""
    return text.replace(MAQAF, "-")


def strip_invisibles(text: str) -> str:
    """Remove bidi controls and zero-width characters; keep a joiner inside an emoji sequence."""
    if not _HAS_INVISIBLES.search(text):
        return text
    if ZWJ in text:
        text = _STRAY_ZWJ.sub("", text)
    return text.translate(_INVISIBLES_TABLE)


def unify_whitespace(text: str) -> str:
    """One space between words, no trailing spaces, '\\n' line breaks, at most one blank line."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = "\n".join(line.strip(" ") for line in text.split("\n"))
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


class Normalizer:
    """The rules that a NormalizeConfig switches on, applied in a fixed order.

    NFC comes first so that the point-stripping tables see decomposed presentation forms;
    whitespace comes last because removing invisibles can leave double spaces.
    """

    def __init__(self, config: NormalizeConfig | None = None) -> None:
        self.config = config or NormalizeConfig()
        c = self.config
        steps = [
            (c.nfc, nfc),
            (c.strip_cantillation, strip_cantillation),
            (c.strip_niqqud, strip_niqqud),
            (c.unify_quotes, unify_quotes),
            (c.maqaf_to_hyphen, maqaf_to_hyphen),
            (c.strip_invisibles, strip_invisibles),
            (c.unify_whitespace, unify_whitespace),
        ]
        self.steps = [fn for enabled, fn in steps if enabled]

    def normalize(self, text: str) -> str:
        for step in self.steps:
            text = step(text)
        return text

    __call__ = normalize


def hf_normalizer(config: NormalizeConfig | None = None):
    """The same rules as a `tokenizers` normalizer, saved inside tokenizer.json, so that a tokenizer
    normalizes raw text at encode time exactly as the corpus was normalized, with no custom code.

    One difference, on purpose: the text is not trimmed at its ends, so that a word encoded with a
    leading space gets the tokens it gets inside a sentence.
    """
    from tokenizers import Regex, normalizers

    c = config or NormalizeConfig()
    steps = []
    if c.nfc:
        steps.append(normalizers.NFC())
    if c.strip_cantillation:
        steps.append(normalizers.Replace(Regex(f"[{CANTILLATION}]"), ""))
    if c.strip_niqqud:
        steps.append(normalizers.Replace(Regex(f"[{NIQQUD}]"), ""))
    if c.unify_quotes:
        steps.append(normalizers.Replace(Regex(f"[{SINGLE_QUOTES}]"), "'"))
        steps.append(normalizers.Replace(Regex(f"[{DOUBLE_QUOTES}]"), '"'))
    if c.maqaf_to_hyphen:
        steps.append(normalizers.Replace(MAQAF, "-"))
    if c.strip_invisibles:
        steps.append(normalizers.Replace(Regex(_STRAY_ZWJ.pattern), ""))
        steps.append(normalizers.Replace(Regex(f"[{INVISIBLES}]"), ""))
    if c.unify_whitespace:
        steps.append(normalizers.Replace(Regex(LINE_BREAK_PATTERN), "\n"))
        steps.append(normalizers.Replace(Regex(f"[{SPACE_CLASS}]+"), " "))
        steps.append(normalizers.Replace(Regex(" ?\n ?"), "\n"))
        steps.append(normalizers.Replace(Regex("\n{3,}"), "\n\n"))
    return normalizers.Sequence(steps)
