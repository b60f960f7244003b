"""Documents of one work: a corpus split's documents grouped by the work they belong to (a Bible book's
chapters, a tractate's pages), in order, for the context-extension run and the long-document eval task."""

from __future__ import annotations

import re
from pathlib import Path

RELATED_ID = re.compile(r"(.+) (\d+)$")


def related_units(corpus_dir: Path, split: str) -> list[list[int]]:
    """The split's documents grouped by work (`units_of` their ids)."""
    from hebrew_lm.corpus.shards import read_records

    return units_of([doc_id for (doc_id,) in read_records(corpus_dir, split, ("id",))])


def units_of(ids: list[str]) -> list[list[int]]:
    """Documents (by row) grouped by work, each group in its own order: documents whose ids differ only in a
    last number (`scriptures/bible.json:Genesis 1`, `... 2`: one book) make one unit, read by that number;
    any other document is a unit alone. Units follow the order of their first document."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for row, doc_id in enumerate(ids):
        m = RELATED_ID.match(doc_id or "")
        key, number = (m.group(1), int(m.group(2))) if m else (f"\0{row}", 0)  # \0: never an id's prefix
        groups.setdefault(key, []).append((number, row))
    return [[row for _, row in sorted(members)] for members in groups.values()]
