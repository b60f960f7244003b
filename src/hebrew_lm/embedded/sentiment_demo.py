"""`sentiment-demo`: a small three-way Hebrew sentiment set that this project writes itself.

A DEMO SET, NOT A BENCHMARK. It exists so that the embedded default pipeline can fine-tune and
evaluate a sentiment classifier with no download. The comments are built from hand-written Hebrew
templates (positive, negative, neutral/off-topic, SMCD's three classes) filled with 30 subjects
(a film, a restaurant, a bus line...), with gender agreement and prefix spelling done right. Splits
are by subject, so dev and test comments talk about things train never mentions; every class has
the same number of comments in every split (360 in all: 240 / 60 / 60). Scores on it say that the
machinery works, not how good a model is: use SMCD for that.

Negative comments include negation cues (לא, אין, אל, בלי) on purpose, as real comments do, so the
error analysis has something to count. License: written for this project, same license as the code.
"""

from __future__ import annotations

import random

from hebrew_lm.records import Example

LABELS = ("positive", "negative", "neutral")
LICENSE = "written for hebrew-lm (templates in hebrew_lm/embedded/sentiment_demo.py), same license as the code"

# (subject with its article, gender)
SUBJECTS = [
    ("הסרט", "m"), ("הספר", "m"), ("השירות", "m"), ("המלון", "m"), ("הטלפון", "m"), ("הקורס", "m"),
    ("המשחק", "m"), ("האוטובוס", "m"), ("הקפה", "m"), ("הרופא", "m"), ("השף", "m"), ("המדריך", "m"),
    ("הפודקאסט", "m"), ("האלבום", "m"), ("המוזיאון", "m"),
    ("המסעדה", "f"), ("ההצגה", "f"), ("האפליקציה", "f"), ("המורה", "f"), ("החנות", "f"), ("הסדרה", "f"),
    ("ההופעה", "f"), ("הספרייה", "f"), ("המרפאה", "f"), ("הרכבת", "f"), ("העוגה", "f"), ("הנסיעה", "f"),
    ("התערוכה", "f"), ("המכונית", "f"), ("הבריכה", "f"),
]
# Every sixth subject goes to dev, every sixth (shifted by one) to test.
DEV_SUBJECTS = {s for i, (s, _) in enumerate(SUBJECTS) if i % 6 == 2}
TEST_SUBJECTS = {s for i, (s, _) in enumerate(SUBJECTS) if i % 6 == 5}

GOOD = [("מעולה", "מעולה"), ("מצוין", "מצוינת"), ("נהדר", "נהדרת"), ("מקסים", "מקסימה"), ("מושלם", "מושלמת"),
        ("מדהים", "מדהימה")]
BAD = [("גרוע", "גרועה"), ("מאכזב", "מאכזבת"), ("איום", "איומה"), ("משעמם", "משעממת"), ("נוראי", "נוראית")]

# {n}: the subject ("המסעדה"); {s}: without its article, for the prefixes ב/ל that swallow it ("במסעדה");
# {was}: היה/הייתה; {adj}: an adjective agreeing with the subject; {m|f}: a word in both genders.
TEMPLATES = {
    "positive": [
        "{n} {was} {adj}, ממליץ בחום!",
        "נהניתי מאוד מ{n}, כל הכבוד",
        "איזה כיף, {n} פשוט {adj}",
        "תודה רבה! {n} {was} {adj} ומעבר לציפיות",
        "{n} {was} {adj}, בטוח נחזור",
        "ממש אהבתי את {n}, שווה כל שקל",
        "מזמן לא נהניתי ככה, {n} {adj}",
        "כל הכבוד על {n}, עבודה מצוינת",
        "{n} {adj} ממש, מגיעים לכם חמישה כוכבים",
        "חוויה נפלאה ב{s}, תודה לכולם",
    ],
    "negative": [
        "{n} {was} {adj}, לא ממליץ בכלל",
        "לא נהניתי מ{n}, חבל על הכסף",
        "{n} {was} {adj} ואף אחד לא עזר",
        "מאוכזב מאוד מ{n}, לא נחזור לעולם",
        "אין מילים, {n} {was} פשוט {adj}",
        "בזבוז זמן, {n} לא {worth|worth_f} את זה",
        "{n}? הכי {adj} שיש, אל תתפתו",
        "לא מבין מה כולם מוצאים ב{s}, {adj} לגמרי",
        "{n} {was} {adj} ובלי שום יחס",
        "אין על מה לדבר, {n} {adj} וזהו",
    ],
    "neutral": [
        "מישהו יודע מתי {n} {opens|opens_f} מחדש?",
        "קראתי כתבה על {n} בעיתון של היום",
        "{n} {moved|moved_f} למקום חדש ברחוב הרצל",
        "שאלה: צריך להזמין מראש את {n}?",
        "מה דעתכם על {n}? עוד לא החלטתי",
        "אני בדרך ל{s}, מישהו רוצה להצטרף?",
        "עדכון: {n} {closed|closed_f} ביום שישי",
        "{n} {located|located_f} ליד התחנה המרכזית",
        "תייגו כאן את מי שהיה איתכם ב{s}",
        "מישהו יודע כמה עולה {n}?",
    ],
}
WORDS = {"worth": "שווה", "worth_f": "שווה", "opens": "נפתח", "opens_f": "נפתחת", "moved": "עבר",
         "moved_f": "עברה", "closed": "סגור", "closed_f": "סגורה", "located": "נמצא", "located_f": "נמצאת"}
PER_SUBJECT_AND_LABEL = 4

# The labels as Hebrew words (eval's sentiment task, SFT's sentiment requests)
SENTIMENT_WORDS = {"positive": "חיובי", "negative": "שלילי", "neutral": "ניטרלי"}


def _fill(template: str, subject: str, gender: str, label: str, rng: random.Random) -> str:
    text = template.replace("{n}", subject).replace("{s}", subject[1:])
    text = text.replace("{was}", "היה" if gender == "m" else "הייתה")
    if "{adj}" in text:
        pair = rng.choice(GOOD if label == "positive" else BAD)
        text = text.replace("{adj}", pair[0] if gender == "m" else pair[1])
    for masc in ("worth", "opens", "moved", "closed", "located"):
        text = text.replace("{%s|%s_f}" % (masc, masc), WORDS[masc] if gender == "m" else WORDS[masc + "_f"])
    return text


def sentiment_demo() -> dict[str, list[Example]]:
    """{"train"|"dev"|"test": examples}, the same on every call (a fixed seed)."""
    rng = random.Random(20261123)
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for subject, gender in SUBJECTS:
        split = "dev" if subject in DEV_SUBJECTS else "test" if subject in TEST_SUBJECTS else "train"
        for label in LABELS:
            for template in rng.sample(TEMPLATES[label], PER_SUBJECT_AND_LABEL):
                text = _fill(template, subject, gender, label, rng)
                splits[split].append(Example(text, label, f"embedded:sentiment-demo/{split}:{len(splits[split]) + 1}"))
    for examples in splits.values():
        rng.shuffle(examples)
    return splits
