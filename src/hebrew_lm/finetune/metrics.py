"""Scores and error analysis.

NER: entity-level micro F1 with seqeval in strict IOBES mode (an entity counts only when its span and
type are both exactly right), per-type precision/recall/F1, and beside it the mention-level F1 that
NEMO's own script (`ne_evaluate_mentions.py`) computes, the score NEMO's published tables use. Classification: macro F1 (the headline:
SMCD is 70% positive) and accuracy. The error analysis goes past the paper: NER errors split into
boundary, type, boundary+type, missed and spurious, with a gold-type x predicted-type confusion matrix;
sentiment errors with a confusion matrix and the negation cues among them.
"""

from __future__ import annotations

import re
from collections import Counter

from seqeval.metrics import classification_report
from seqeval.scheme import IOBES

from hebrew_lm.labels import entities
from hebrew_lm.records import Example, Sentence

NONE = "(none)"


def ner_scores(gold: list[list[str]], pred: list[list[str]], words: list[list[str]] | None = None) -> dict:
    """seqeval's strict entity F1 (the headline) and, given the words, the mention-level F1 of NEMO's own
    scoring script beside it (`mention_scores`)."""
    report = classification_report(gold, pred, mode="strict", scheme=IOBES, output_dict=True, zero_division=0)
    per_type = {
        k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": int(v["support"])}
        for k, v in report.items() if not k.endswith(" avg")
    }
    micro = report["micro avg"]
    out = {"score": float(micro["f1-score"]), "precision": float(micro["precision"]), "recall": float(micro["recall"]),
           "f1": float(micro["f1-score"]), "per_type": per_type}
    if words is not None:
        mention = mention_scores(words, gold, pred)
        out.update({f"mention_{k}": v for k, v in mention.items()})
    return out


def mentions(words: list[str], tags: list[str], sentence: int) -> Counter:
    """A sentence's mentions as NEMO's `ne_evaluate_mentions.py` reads them: (sentence, text, type), counted.

    Its rules, which differ from seqeval's strict mode: an S tag is a mention of its own; B opens one with
    B's type, I extends an open one, E closes an open one (whatever E's own type: `B-PER E-ORG` is a PER
    mention); O, or an I/E with nothing open, opens nothing; a new B restarts. A mention is its words
    joined with no separator, and mentions are matched by (sentence, text, type), not by position."""
    found: Counter = Counter()
    current: list[str] | None = None
    kind = ""
    for word, tag in zip(words, tags):
        bio, _, cat = tag.partition("-")
        if bio == "S":
            found[(sentence, word, cat)] += 1
            current = None
        elif bio == "B":
            current, kind = [word], cat
        elif bio == "I" and current is not None:
            current.append(word)
        elif bio == "E" and current is not None:
            current.append(word)
            found[(sentence, "".join(current), kind)] += 1
            current = None
        elif bio == "O":
            current = None
    return found


def mention_scores(words: list[list[str]], gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Precision, recall and F1 over mentions (`mentions`), as NEMO's script computes them (0 where it says -1)."""
    g, p = Counter(), Counter()
    for i, (w, gt, pt) in enumerate(zip(words, gold, pred)):
        g += mentions(w, gt, i)
        p += mentions(w, pt, i)
    correct = sum((g & p).values())
    precision = correct / sum(p.values()) if p else 0.0
    recall = correct / sum(g.values()) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def classification_scores(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    per_label = {}
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label and g != label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    macro = sum(v["f1"] for v in per_label.values()) / len(labels)
    accuracy = sum(g == p for g, p in zip(gold, pred)) / max(1, len(gold))
    return {"score": macro, "macro_f1": macro, "accuracy": accuracy, "per_label": per_label}


# --------------------------------------------------------------------------------------------------
# Error analysis


def _overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def ner_errors(sentences: list[Sentence], pred: list[list[str]], types: list[str], max_examples: int = 20) -> dict:
    """Every gold and predicted entity falls into exactly one category:

    correct         same span, same type
    type            same span, other type
    boundary        overlapping span (not the same), same type
    boundary+type   overlapping span, other type
    missed          a gold entity nothing predicted overlaps
    spurious        a predicted entity no gold entity overlaps
    A predicted entity overlapping several gold ones is matched to the first."""
    counts: Counter = Counter()
    confusion = {g: Counter() for g in [*types, NONE]}
    examples: dict[str, list[dict]] = {k: [] for k in ("type", "boundary", "boundary+type", "missed", "spurious")}

    def example(kind: str, s: Sentence, g, p) -> None:
        if len(examples[kind]) < max_examples:
            examples[kind].append({
                "where": s.where, "sentence": " ".join(s.words),
                "gold": f"{' '.join(s.words[g[1]:g[2]])} [{g[0]}]" if g else None,
                "predicted": f"{' '.join(s.words[p[1]:p[2]])} [{p[0]}]" if p else None,
            })

    for s, tags in zip(sentences, pred):
        gold_spans, pred_spans = entities(s.tags), entities(tags)
        used = set()
        for g in gold_spans:
            match = next((j for j, p in enumerate(pred_spans) if j not in used and _overlaps(g, p)), None)
            if match is None:
                counts["missed"] += 1
                confusion[g[0]][NONE] += 1
                example("missed", s, g, None)
                continue
            used.add(match)
            p = pred_spans[match]
            same_span, same_type = g[1:] == p[1:], g[0] == p[0]
            kind = "correct" if same_span and same_type else "type" if same_span else \
                "boundary" if same_type else "boundary+type"
            counts[kind] += 1
            confusion[g[0]][p[0]] += 1
            if kind != "correct":
                example(kind, s, g, p)
        for j, p in enumerate(pred_spans):
            if j not in used:
                counts["spurious"] += 1
                confusion[NONE][p[0]] += 1
                example("spurious", s, None, p)
    kinds = ["correct", "type", "boundary", "boundary+type", "missed", "spurious"]
    return {
        "counts": {k: counts[k] for k in kinds},
        "confusion": {"labels": [*types, NONE],
                      "matrix": [[confusion[g][p] for p in [*types, NONE]] for g in [*types, NONE]]},
        "examples": examples,
    }


# Hebrew negation words, as whole words or behind the one-letter prefixes (ו, ש, כש...).
NEGATION = re.compile(r"(?:^|[\s\"'(])[ושכהלמב]{0,2}(לא|אין|אינו|אינה|אינם|אינן|איני|אינני|בלי|ללא|אל|אף|שום|מעולם|אסור)(?=$|[\s.,!?\"')])")


def has_negation(text: str) -> bool:
    return bool(NEGATION.search(text))


def classification_errors(examples: list[Example], pred: list[str], labels: list[str], max_examples: int = 20) -> dict:
    confusion = [[sum(e.label == g and p == q for e, p in zip(examples, pred)) for q in labels] for g in labels]
    wrong = [(e, p) for e, p in zip(examples, pred) if e.label != p]
    negated_wrong = sum(has_negation(e.text) for e, _ in wrong)
    negated_all = sum(has_negation(e.text) for e in examples)
    return {
        "confusion": {"labels": labels, "matrix": confusion},
        "errors": len(wrong),
        "negation": {
            "errors_with_negation": negated_wrong,
            "share_of_errors": negated_wrong / len(wrong) if wrong else 0.0,
            "share_of_all": negated_all / len(examples) if examples else 0.0,
            "error_rate_with_negation": negated_wrong / negated_all if negated_all else 0.0,
            "error_rate_without_negation": (len(wrong) - negated_wrong) / (len(examples) - negated_all)
            if len(examples) > negated_all else 0.0,
        },
        "examples": [{"where": e.where, "text": e.text, "gold": e.label, "predicted": p,
                      "negation": has_negation(e.text)} for e, p in wrong[:max_examples]],
    }
