"""Extractive-QA scores with Hebrew-aware normalization (HeQ), for lm-eval's `process_results`.

lm-eval's `squadv2` metric normalizes English (articles a/an/the, ASCII punctuation) and needs the
`evaluate` package's Hub metric; Hebrew needs its own normalization, so this is written here
(docs/decisions.md): niqqud and cantillation stripped, punctuation of both scripts removed, and one
attached prefix letter (ו, ה, ב, ל, מ, ש, כ, and ו followed by one of them) dropped from words of three
letters or more, so "בחקיקה" and "חקיקה" match as the leaderboard's normalization makes them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

MARKS = re.compile(r"[\u0591-\u05C7]")  # cantillation, niqqud, maqaf, sof pasuq and the like
PUNCTUATION = re.compile(r"[^\w\s]")
PREFIX = re.compile(r"^(?:ו?[הבלמשכ]|ו)(?=[\u05D0-\u05EA]{2,})")


def normalize_tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", MARKS.sub(lambda m: " " if m.group() in "\u05BE\u05C3" else "", text))
    words = PUNCTUATION.sub(" ", text.lower()).split()
    return [PREFIX.sub("", w) for w in words]


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_tokens(prediction), normalize_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, substitute one character) that turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def tlnls(prediction: str, gold: str) -> float:
    """HeQ's token-level normalized Levenshtein similarity (Cohen et al., 2023), as we read its definition:
    each predicted word scores its best 1 - edits / longer length against the gold words, and the sum is
    divided by the longer of the two word counts. A near-miss of inflection ("לירושלים" for "ירושלים")
    keeps most of its credit where token F1 gives none."""
    pred, ref = normalize_tokens(prediction), normalize_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    best = [max(1 - levenshtein(p, g) / max(len(p), len(g)) for g in ref) for p in pred]
    return sum(best) / max(len(pred), len(ref))


def qa_scores(prediction: str, answers: list[str]) -> dict[str, float]:
    """The best token F1, exact match and TLNLS of `prediction` over the gold answers."""
    return {"f1": max(token_f1(prediction, a) for a in answers),
            "exact_match": max(float(normalize_tokens(prediction) == normalize_tokens(a)) for a in answers),
            "tlnls": max(tlnls(prediction, a) for a in answers)}


def process_qa(doc: dict, results: list[str]) -> dict[str, float]:
    """lm-eval's per-item hook for generative QA tasks: `results[0]` is the model's answer."""
    return qa_scores(results[0].strip(), doc["answers"])
