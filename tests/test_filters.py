from hebrew_lm.corpus.config import CorpusConfig
from hebrew_lm.corpus.filters import (
    DocumentFilter,
    is_boilerplate_line,
    low_hebrew_ratio,
    remove_boilerplate_lines,
    repetition,
    too_long,
    too_short,
)


def test_length_filters():
    assert too_short("אחת שתיים שלוש", min_words=5) == "too_short"
    assert too_short("אחת שתיים שלוש ארבע חמש", min_words=5) is None
    assert too_long("א" * 11, max_chars=10) == "too_long"
    assert too_long("א" * 10, max_chars=10) is None


def test_language_filter():
    assert low_hebrew_ratio("This sentence is English with one word שלום", 0.5) == "low_hebrew_ratio"
    assert low_hebrew_ratio("הממשלה אישרה את תקציב Google Cloud לשנה הבאה", 0.5) is None


def test_boilerplate_lines():
    for line in ["https://www.ynet.co.il/news/article/abc", "www.example.co.il",
                 "ראשי | חדשות | ספורט | תרבות | צור קשר", "© 2024 כל הזכויות שמורות", "קראו עוד",
                 "Home • News • Sport • Contact", "לחצו כאן"]:
        assert is_boilerplate_line(line), line
    for line in ["הם שתפו פעולה עם המשטרה", "הכנסת אישרה את החוק בקריאה שלישית",
                 "לפרטים ראו באתר https://gov.il ובמשרדי הרשות המקומית"]:
        assert not is_boilerplate_line(line), line


def test_boilerplate_removed_from_a_good_document_and_a_menu_page_dropped():
    page = "הכנסת אישרה את החוק בקריאה שלישית אחרי דיון ארוך\nקראו עוד\nhttps://example.com/x"
    text, removed, reason = remove_boilerplate_lines(page, 0.5)
    assert reason == "boilerplate" and removed == 2  # two of three lines were boilerplate
    page = "הכנסת אישרה את החוק\nהדיון נמשך שעות\nהאופוזיציה הצביעה נגד\nקראו עוד"
    text, removed, reason = remove_boilerplate_lines(page, 0.5)
    assert reason is None and removed == 1 and "קראו עוד" not in text


def test_repetition_catches_spam_and_spares_real_text(hebrew_docs):
    spam = "\n".join(["מבצע מיוחד היום בלבד"] * 10 + ["שורה אחרת לגמרי"])
    assert repetition(spam, 50) == "repetition_lines"
    spam = " ".join(["קנו עכשיו במחיר הכי זול בארץ"] * 12)
    assert repetition(spam, 50) == "repetition_ngrams"
    bible = [d for d in hebrew_docs[:929] if len(d.split()) >= 50]
    dropped = sum(1 for d in bible if repetition(d, 50))
    assert dropped / len(bible) < 0.05  # the Bible is not web spam


def test_repetition_tolerance_relaxes_thresholds():
    text = " ".join("אמר רבי יוחנן משום רבי שמעון בן יוחאי".split() * 2 + [f"מילה{i}" for i in range(60)])
    assert repetition(text, 50, tolerance=1.0) == "repetition_ngrams"
    assert repetition(text, 50, tolerance=3.0) is None


def test_document_filter_order_and_switches():
    config = CorpusConfig(output_dir="x", min_words=3, boilerplate_filter=False)
    f = DocumentFilter(config)
    assert f("קראו עוד")[1] == "too_short"
    assert f("hello big wide world")[1] == "low_hebrew_ratio"
    assert f("הכנסת אישרה את החוק")[1] is None
