import unicodedata

import pytest

from hebrew_lm.text.normalize import NormalizeConfig
from hebrew_lm.text.normalize import (
    Normalizer,
    maqaf_to_hyphen,
    nfc,
    strip_cantillation,
    strip_invisibles,
    strip_niqqud,
    unify_quotes,
    unify_whitespace,
)
from hebrew_lm.text.script import hebrew_letter_ratio

GENESIS_1_1 = "בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים אֵ֥ת הַשָּׁמַ֖יִם וְאֵ֥ת הָאָֽרֶץ׃"


def test_pointed_bible_verse_becomes_plain_letters():
    assert Normalizer()(GENESIS_1_1) == "בראשית ברא אלהים את השמים ואת הארץ׃"


def test_cantillation_alone_keeps_niqqud():
    out = strip_cantillation(nfc(GENESIS_1_1))
    assert "\u0596" not in out and "\u05a3" not in out  # tipcha, munach gone
    assert "\u05b0" in out and "\u05b8" in out  # sheva, qamats stay
    keep = Normalizer(NormalizeConfig(strip_niqqud=False))(GENESIS_1_1)
    assert keep.startswith("בְּרֵאשִׁית") and "\u0596" not in keep


def test_final_letters_survive_every_rule():
    text = "מלך ארץ שלום כף אף ציץ"
    assert Normalizer()(text) == text


def test_niqqud_strip_keeps_letters_and_punctuation_in_the_block():
    # maqaf (U+05BE), paseq (U+05C0) and sof pasuq (U+05C3) are punctuation, not pointing
    text = "כָּל\u05beהָעָם \u05c0 וַיֹּאמֶר\u05c3"
    assert strip_niqqud(text) == "כל\u05beהעם \u05c0 ויאמר\u05c3"


def test_presentation_forms_decompose_under_nfc_then_lose_points():
    # U+FB2A is shin with shin dot, U+FB35 vav with dagesh
    assert strip_niqqud(nfc("\ufb2a\ufb35\ufb2a")) == "שוש"
    assert unicodedata.is_normalized("NFC", Normalizer()("\ufb2aלום"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("צה״ל", 'צה"ל'),
        ('צה"ל', 'צה"ל'),
        ("ג׳ירפה", "ג'ירפה"),
        ("ג’ירפה", "ג'ירפה"),
        ("“ציטוט”", '"ציטוט"'),
        ("ד״ר כהן ז׳ורז׳", "ד\"ר כהן ז'ורז'"),
    ],
)
def test_geresh_and_gershayim_become_ascii(text, expected):
    assert unify_quotes(text) == expected


def test_both_acronym_spellings_normalize_to_one():
    n = Normalizer()
    assert n("צבא הגנה לישראל, צה״ל") == n('צבא הגנה לישראל, צה"ל')


def test_maqaf_becomes_hyphen():
    assert maqaf_to_hyphen("בית\u05beהמקדש") == "בית-המקדש"


def test_bidi_marks_and_zero_width_characters_are_removed():
    text = "\u200fשלום\u200e \u202bעולם\u202c\u200b!\ufeff \u2067iPhone 15\u2069 ב\u00adית"
    assert strip_invisibles(text) == "שלום עולם! iPhone 15 בית"


def test_emoji_joiner_survives_but_stray_joiner_goes():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert strip_invisibles(f"משפחה {family}") == f"משפחה {family}"
    assert strip_invisibles("של\u200dום") == "שלום"


def test_mixed_hebrew_latin_digits_keep_their_order():
    text = "\u200fהמחיר של iPhone\u00a015 הוא 3,999 ₪ (כ-1,100 $)"
    assert Normalizer()(text) == "המחיר של iPhone 15 הוא 3,999 ₪ (כ-1,100 $)"


def test_whitespace_unified_lines_kept():
    text = "  שורה\u2003ראשונה \t\r\nשורה\u00a0שנייה\n\n\n\nפסקה  "
    assert unify_whitespace(text) == "שורה ראשונה\nשורה שנייה\n\nפסקה"


def test_every_rule_can_be_switched_off():
    off = NormalizeConfig(**{f: False for f in NormalizeConfig.__dataclass_fields__})
    text = "  צה״ל\u200f בְּרֵאשִׁ֖ית "
    assert Normalizer(off)(text) == text


def test_normalizer_is_idempotent_on_real_text(hebrew_docs):
    n = Normalizer()
    for doc in hebrew_docs[:50]:
        assert n(doc) == doc  # the fixture is normalized already


@pytest.mark.parametrize(
    "text, ratio",
    [("שלום עולם", 1.0), ("hello world", 0.0), ("שלום abcd", 0.5), ("123 !!", 0.0), ("iPhone של אפל", 5 / 11)],
)
def test_hebrew_letter_ratio(text, ratio):
    assert hebrew_letter_ratio(text) == pytest.approx(ratio)
