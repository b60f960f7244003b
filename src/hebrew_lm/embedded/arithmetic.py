"""Hebrew arithmetic word problems from templates, with exact integer answers and worked solutions: the
eval's he_arith task scores some (seeds 11 and 12), SFT's demo mix trains on others (seed 21), none shared."""

from __future__ import annotations

import random
from typing import Any

EVAL_SEEDS = {"shots": 11, "test": 12}
"""The seeds of the he_arith task's shots and scored items."""
EVAL_SHOTS, EVAL_TEST_DRAWS = 5, 3 * 60

NAMES = [("דני", "m"), ("רותי", "f"), ("יוסי", "m"), ("מיכל", "f"), ("אבי", "m"), ("נועה", "f"), ("עומר", "m"),
         ("שירה", "f")]
OBJECTS = ["תפוחים", "ספרים", "עפרונות", "כדורים", "בלונים", "מדבקות"]


def arithmetic_items(count: int, seed: int) -> list[dict[str, Any]]:
    """Hebrew word problems with exact integer answers (addition, subtraction, multiplication), verbs agreeing with the name."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        (name, gender), thing = rng.choice(NAMES), rng.choice(OBJECTS)
        got, gave = ("קיבל", "נתן") if gender == "m" else ("קיבלה", "נתנה")
        a, b = rng.randint(2, 40), rng.randint(2, 20)
        kind = rng.choice(["add", "sub", "mul"])
        if kind == "add":
            question, answer = f"ל{name} יש {a} {thing}. {got} עוד {b} {thing}. כמה {thing} יש ל{name} עכשיו?", a + b
            work = f"{a} ועוד {b} הם {answer}."
        elif kind == "sub":
            a += b
            question, answer = f"ל{name} היו {a} {thing}. {gave} {b} {thing} לחברים. כמה {thing} נשארו ל{name}?", a - b
            work = f"{a} פחות {b} הם {answer}."
        else:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
            question, answer = f"ב-{a} קופסאות יש {b} {thing} בכל אחת. כמה {thing} יש בכל הקופסאות?", a * b
            work = f"{a} כפול {b} הם {answer}."
        items.append({"query": f"שאלה: {question}\nתשובה:", "answers": [str(answer)], "where": f"template seed {seed}",
                      "question": question, "work": f"{work} התשובה: {answer}"})
    return items


def eval_arithmetic_questions() -> set[str]:
    """Every question the he_arith task uses (its shots and scored items): SFT's word problems avoid them."""
    return {item["question"] for seed, n in ((EVAL_SEEDS["shots"], EVAL_SHOTS + 3), (EVAL_SEEDS["test"], EVAL_TEST_DRAWS))
            for item in arithmetic_items(n, seed)}
