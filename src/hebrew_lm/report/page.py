"""The report's page: a `Section` (paragraphs, tables, images, summary lines) and its rendering as one
self-contained HTML file and as Markdown."""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hebrew_lm.runs import is_finished


@dataclass
class Section:
    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    """(caption, header, rows)"""
    images: list[tuple[str, Path]] = field(default_factory=list)
    """(alt text, file)"""
    summary: list[str] = field(default_factory=list)
    """One line each for the report's summary box."""


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def number(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"


def task_comparison(column: str, ours: dict, baseline: dict) -> str:
    """'NEMO 21.2 vs 20.7, within seed noise'."""
    from hebrew_lm.finetune.results import beyond_seed_noise

    verdict = "beyond seed noise" if beyond_seed_noise(ours, baseline) else "within seed noise"
    return f"{column} {100 * ours['mean']:.1f} vs {100 * baseline['mean']:.1f}, {verdict}"


def stage_section(section_id: str, title: str, stage: str):
    """The scaffold every stage's section shares: `@stage_section("cpt", "Continued pretraining", "cpt")` on
    `body(folder, stats, section)` makes `folder -> [section]`, which says the stage has not run when its
    folder holds no finished stats.json, and otherwise lets `body` fill the section from them."""

    def wrap(body: Callable[[Path, dict, Section], None]) -> Callable[[Path], list[Section]]:
        @functools.wraps(body)
        def section(folder: Path) -> list[Section]:
            s = Section(section_id, title)
            stats = finished_stats(folder, s, stage)
            if stats is not None:
                body(folder, stats, s)
            return [s]

        return section

    return wrap


def finished_stats(folder: Path, s: Section, stage: str) -> dict | None:
    """The stage's stats.json, or None with a line in the section saying the stage has not run."""
    stats = read_json(folder / "stats.json")
    if not is_finished(folder) or stats is None:
        s.paragraphs.append(f"The {stage} stage has not run ({folder}).")
        return None
    return stats


def _md_table(caption: str, header: list[str], rows: list[list[str]]) -> str:
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    return "\n".join([f"**{caption}**", "", "| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header),
                      *["| " + " | ".join(map(esc, r)) + " |" for r in rows]])


def render_markdown(title: str, summary: list[str], sections: list[Section], images: dict[Path, str]) -> str:
    out = [f"# {title}", ""]
    out += [f"- {line}" for line in summary] + [""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        for t in s.tables:
            out += [_md_table(*t), ""]
        for alt, path in s.images:
            out += [f"![{alt}](img/{images[path]})", ""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1a1a1a;line-height:1.45}
h1{border-bottom:2px solid #345;padding-bottom:.3em}h2{margin-top:2em;color:#234}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #ccd;padding:.3em .6em;text-align:right}th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #dde;margin:.5em 0}nav a{margin-right:1em}.summary{background:#f4f8f4;border-left:4px solid #4a4;padding:.6em 1em}
[dir=auto]{unicode-bidi:plaintext}code{background:#f2f2f2;padding:0 .2em}"""


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def render_html(title: str, summary: list[str], sections: list[Section]) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>",
             "<nav>" + "".join(f'<a href="#{s.id}">{e(s.title)}</a>' for s in sections) + "</nav>"]
    if summary:
        parts.append('<div class="summary" id="summary"><ul>' + "".join(f'<li dir="auto">{e(x)}</li>' for x in summary)
                     + "</ul></div>")
    for s in sections:
        parts.append(f'<section id="{s.id}"><h2>{e(s.title)}</h2>')
        parts += [f'<p dir="auto">{_inline(p)}</p>' for p in s.paragraphs]
        for caption, header, rows in s.tables:
            parts.append(f"<table><caption>{e(caption)}</caption><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                         + "".join("<tr>" + "".join(f'<td dir="auto">{e(str(c))}</td>' for c in r) + "</tr>" for r in rows)
                         + "</table>")
        for alt, path in s.images:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{e(alt)}" src="data:image/png;base64,{data}"><figcaption>{e(alt)}</figcaption></figure>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


