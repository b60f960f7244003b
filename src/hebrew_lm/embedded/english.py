"""English prose the project can build offline: the docstrings of Python's standard library, then of
the installed packages (transformers, torch and datasets are documented at length).

    texts = list(english_docstrings(max_bytes=5_000_000))

Used to train the English byte-level BPE baseline of the tokenizer audit: a tokenizer of the same
size that knows English, as RoBERTa's does, against which a Hebrew vocabulary is measured. Read
from the running interpreter's own files, in a fixed order, so the baseline is reproducible.
"""

from __future__ import annotations

import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Triple-quoted strings of at least 8 words: docstrings, found with a regex (ast is 20x slower).
_DOCSTRING = re.compile(r'"""(.{40,}?)"""', re.S)


def english_docstrings(max_bytes: int) -> Iterator[str]:
    paths = sysconfig.get_paths()
    stdlib, site = Path(paths["stdlib"]), Path(paths["purelib"])
    files = sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")) + sorted(site.glob("*/**/*.py"))
    total = 0
    for path in files:
        if any(part.startswith("test") for part in path.parts[-3:]):
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for match in _DOCSTRING.finditer(source):
            doc = " ".join(match.group(1).split())
            if len(doc.split()) >= 8 and doc.isascii():
                yield doc
                total += len(doc)
                if total >= max_bytes:
                    return
