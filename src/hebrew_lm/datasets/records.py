"""Record types at the bottom of the package: what readers yield, imported by the corpus stage and by
the embedded data sets alike (neither imports the other for them)."""

from __future__ import annotations

from dataclasses import dataclass


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
