"""Writing a benchmark's table into BENCHMARKS.md: each (script, input size) keeps its own block,
replaced in place on a rerun, under a section the script introduces once."""

from __future__ import annotations

import re
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_block(script: str, label: str, table: str, section: str, intro: str) -> None:
    begin, end = f"<!-- bench/{script} {label} begin -->", f"<!-- bench/{script} {label} end -->"
    text = PATH.read_text(encoding="utf-8") if PATH.exists() else "# Benchmarks\n"
    block = f"{begin}\n{table}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        if section not in text:
            text = text.rstrip("\n") + f"\n\n{section}\n\n{intro}\n"
        text = text.rstrip("\n") + f"\n\n### {label} input\n\n{block}\n"
    PATH.write_text(text, encoding="utf-8")
