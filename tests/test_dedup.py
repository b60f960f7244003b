"""Deduplication quality on planted duplicates in real Hebrew text (Bible and Mishnah chapters)."""

import json

import pytest

from hebrew_lm.corpus.dedup import MinHasher, catch_probability, lsh_params
from hebrew_lm.corpus.filters import repetition
from hebrew_lm.corpus.dedup_eval import plant_duplicates, score_removals

from helpers import build


def mutually_distinct(docs, n, max_jaccard=0.3, min_words=80):
    """The first n documents that share at most `max_jaccard` of their 5-gram shingles with each other
    (the Bible has parallel chapters, which would otherwise count as planted false positives)."""
    hasher = MinHasher(16, 5)
    kept, sets = [], []
    for doc in docs:
        if len(doc.split()) < min_words or repetition(doc, 50):
            continue  # keep the test about dedup: no document the filters would drop
        s = hasher.shingles(doc)
        if all(len(s & t) / len(s | t) <= max_jaccard for t in sets):
            kept.append(doc)
            sets.append(s)
            if len(kept) == n:
                break
    return kept


@pytest.fixture(scope="module")
def planted(hebrew_docs):
    unique = mutually_distinct(hebrew_docs, 400)
    assert len(unique) == 400
    return plant_duplicates(unique, num_exact=100, num_near=100, seed=7)


def test_planted_near_duplicates_are_near_by_the_definition(planted):
    docs, pairs = planted
    hasher = MinHasher(16, 5)
    for p in pairs:
        a, b = hasher.shingles(docs[p.original]), hasher.shingles(docs[p.copy])
        jaccard = len(a & b) / len(a | b)
        assert jaccard >= {"exact": 1.0, "scattered": 0.7, "block": 0.8}[p.kind]


def test_dedup_recall_and_precision_on_planted_duplicates(tmp_path, planted):
    docs, pairs = planted
    with open(tmp_path / "planted.jsonl", "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({"text": doc}, ensure_ascii=False) + "\n")
    stats, rejects = build(tmp_path / "out", [tmp_path / "planted.jsonl"], exact_dedup=True, near_dedup=True)
    removed = {int(r["where"].rsplit(":", 1)[1]) - 1 for r in rejects}
    assert {r["reason"] for r in rejects} <= {"exact_duplicate", "near_duplicate"}
    score = score_removals(len(docs), pairs, removed)
    print("dedup on planted duplicates:", json.dumps(score))
    assert score["recall_exact"] == 1.0
    assert score["recall_all"] >= 0.9
    assert score["unique_removed"] == 0 and score["precision"] == 1.0
    assert stats["duplicates"]["exact"] + stats["duplicates"]["near"] == len(removed)
    near = [r for r in rejects if r["reason"] == "near_duplicate"]
    assert all(r["duplicate_of"].startswith(str(tmp_path / "planted.jsonl")) for r in near)


def test_lsh_bands_favour_recall_at_the_threshold():
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128
    assert catch_probability(0.8, bands, rows) > 0.85
    assert catch_probability(0.9, bands, rows) > 0.99
    assert catch_probability(0.3, bands, rows) < 0.001


def test_the_scorer_counts_a_pair_found_only_when_exactly_one_side_is_removed():
    from hebrew_lm.corpus.dedup_eval import PlantedPair

    pairs = [PlantedPair(0, 1, "exact"), PlantedPair(2, 3, "scattered"), PlantedPair(4, 5, "block")]
    score = score_removals(7, pairs, removed={1, 2, 3, 6})
    assert (score["recall_exact"], score["recall_scattered"], score["recall_block"]) == (1.0, 0.0, 0.0)
    assert score["recall_all"] == pytest.approx(1 / 3)
    assert score["precision"] == 0.75 and score["unique_removed"] == 1 and score["removed"] == 4
    # A document dropped for another reason takes its pair out of the score.
    score = score_removals(7, pairs, removed={1, 2, 3, 6}, exclude={4})
    assert score["pairs_scored"] == 2 and "recall_block" not in score and score["recall_all"] == 0.5
