"""Record types and line readers at the bottom of the package: what readers yield (a raw document, a
NER sentence, a classification example) and the one reader of labelled lines and JSONL that fine-tuning,
evaluation, SFT and the embedded data sets share (none of them imports another for these).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RawDoc:
    """A document as read, before normalization. `where` is `file:line` (or the closest thing)."""

    text: str
    source: str
    where: str
    nbytes: int
    error: str | None = None
    encoding: str = "utf-8"
    """The file's encoding when it was not UTF-8 (decoded, counted under `decoded_from` in stats.json)."""


@dataclass
class Sentence:
    """One NER sentence: words and their tags (empty tags: an unlabelled file)."""

    words: list[str]
    tags: list[str]
    where: str = ""
    """file:line of the sentence's first word, for error messages and examples."""
    one_line: bool = False
    """The whole sentence is one line (JSONL): its token i is not at line + i."""
    file_tags: list[str] | None = None
    """The tags as the file wrote them, when they were converted (BIO -> BIOES), for error messages."""


@dataclass
class Example:
    """One classification example."""

    text: str
    label: str
    where: str = ""


def read_lines(path: str | Path) -> list[str]:
    """The one line reader of labelled files: UTF-8 (a BOM is dropped), lines split on \\n only with one
    trailing \\r stripped (str.splitlines would also break on U+2028, U+0085, \\v, \\f inside valid text
    and shift every line number after them). A missing file or another encoding is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        lines = raw.decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line[:-1] if line.endswith("\r") else line for line in lines]
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        try:
            raw.decode("cp1255")
            hint = " (it decodes as Windows-1255: convert it with `iconv -f cp1255 -t utf-8`)"
        except UnicodeDecodeError:
            hint = ""
        raise ValueError(f"{path}:{line}: not UTF-8{hint}") from None


def jsonl_records(path: Path):
    """(line number, record) for each non-empty line of a labelled JSONL file (fine-tuning, eval and SFT
    files alike); not UTF-8, bad JSON, or JSON that is not an object is an error naming the line."""
    for n, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object, got {type(record).__name__} ({line.strip()[:40]})")
        yield n, record
