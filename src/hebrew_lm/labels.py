"""NER tag schemes: BIOES and BIO, their legal transitions, conversion, repair and the entities they mark.
Shared by fine-tuning, the embedded Hebrew Treebank NER set and evaluation, below all of them."""

from __future__ import annotations

import re

TAG_RE = re.compile(r"^(O|[BIES]-[^\s]+)$")


def tag_type(tag: str) -> str:
    return tag[2:] if tag != "O" else ""


def bio_to_bioes(tags: list[str]) -> list[str]:
    """BIO (IOB2) -> BIOES: single-word entities become S-, last words E-."""
    out = []
    for i, tag in enumerate(tags):
        nxt = tags[i + 1] if i + 1 < len(tags) else "O"
        continues = nxt == f"I-{tag_type(tag)}"
        if tag.startswith("B-"):
            out.append(tag if continues else "S-" + tag[2:])
        elif tag.startswith("I-"):
            out.append(tag if continues else "E-" + tag[2:])
        else:
            out.append(tag)
    return out


def bioes_to_bio(tags: list[str]) -> list[str]:
    """BIOES -> BIO (IOB2)."""
    return ["B-" + t[2:] if t[0] == "S" else "I-" + t[2:] if t[0] == "E" else t for t in tags]


def legal_transition(prev: str, tag: str) -> bool:
    """Whether BIOES lets `tag` follow `prev` (a sentence starts and ends after and before an O): I and
    E only continue an open entity of their type; O, B and S only come when none is open."""
    inside = prev[0] in "BI"
    if tag[0] in "IE":
        return inside and tag_type(tag) == tag_type(prev)
    return not inside


def bioes_violations(tags: list[str]) -> list[int]:
    """Positions whose tag cannot follow the previous one in BIOES (or that leave an entity open)."""
    bad = []
    prev = "O"
    for i, tag in enumerate(tags + ["O"]):
        if not legal_transition(prev, tag):
            bad.append(i)
        prev = tag
    return [min(i, len(tags) - 1) for i in bad]


def repair_bioes(tags: list[str]) -> list[str]:
    """The nearest legal BIOES sequence: a stray I/E opens an entity, an entity left open is closed."""
    out = list(tags)
    for i, tag in enumerate(out):
        prev = out[i - 1] if i else "O"
        open_before = prev[0] in "BI" and tag_type(prev) == tag_type(tag)
        if tag[0] in "IE" and not open_before:
            out[i] = ("B-" if tag[0] == "I" else "S-") + tag[2:]
    for i, tag in enumerate(out):
        nxt = out[i + 1] if i + 1 < len(out) else "O"
        continues = nxt[0] in "IE" and tag_type(nxt) == tag_type(tag)
        if tag[0] == "B" and not continues:
            out[i] = "S-" + tag[2:]
        elif tag[0] == "I" and not continues:
            out[i] = "E-" + tag[2:]
    return out


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, start, end exclusive) of each well-formed BIOES entity; a broken one yields nothing (seqeval's strict mode)."""
    spans = []
    start, kind = None, ""
    for i, tag in enumerate(tags):
        p, t = tag[0], tag_type(tag)
        if p == "S":
            spans.append((t, i, i + 1))
            start = None
        elif p == "B":
            start, kind = i, t
        elif p == "I":
            if start is None or t != kind:
                start = None
        elif p == "E":
            if start is not None and t == kind:
                spans.append((t, start, i + 1))
            start = None
        else:
            start = None
    return spans
