"""Wikitext -> article prose, with mwparserfromhell.

    >>> wikitext_to_text("'''ירושלים''' היא [[עיר]].<ref>מקור</ref>\\n[[קטגוריה:ערים]]")
    'ירושלים היא עיר.'

Kept: paragraphs, list items, link text, bold and italic text. Dropped: templates (infoboxes,
citations), tables, references and other non-prose tags, files, categories, interlanguage links,
headings, and the trailing sections that are not prose (see also, references, external links).
"""

from __future__ import annotations

import re

import mwparserfromhell
from mwparserfromhell.nodes import Comment, Heading, Tag, Template, Wikilink

# Tags whose content is not article prose.
_DROP_TAGS = {
    "ref", "references", "table", "gallery", "math", "chem", "score", "timeline", "graph",
    "syntaxhighlight", "source", "pre", "code", "imagemap", "mapframe", "maplink", "templatedata",
    "noinclude", "includeonly", "poem", "hiero", "inputbox", "categorytree", "div", "center",
}
# Link namespaces that are not prose (Hebrew and English names of the same namespaces).
_DROP_LINK_PREFIXES = (
    "קטגוריה:", "category:", "קובץ:", "file:", "תמונה:", "image:", "מדיה:", "media:",
    "ויקיפדיה:", "wikipedia:", "תבנית:", "template:", "פורטל:", "portal:", "שיחה:", "talk:",
)
_INTERLANGUAGE = re.compile(r"^:?[a-z]{2,3}(-[a-z]+)?:")
# Sections that end an article and hold links and sources rather than prose.
_DROP_SECTIONS = {
    "ראו גם", "קישורים חיצוניים", "הערות שוליים", "לקריאה נוספת", "מקורות", "ביבליוגרפיה",
    "הערות", "סימוכין", "דיסקוגרפיה", "פילמוגרפיה",
    "see also", "references", "external links", "further reading", "notes", "bibliography", "sources",
}
_LIST_MARK = re.compile(r"^[*#:;]+\s*")
_SPACES = re.compile(r"[ \t]+")


def _drop_link(title: str) -> bool:
    title = title.strip().lower()
    return title.startswith(_DROP_LINK_PREFIXES) or bool(_INTERLANGUAGE.match(title))


def wikitext_to_text(wikitext: str) -> str:
    code = mwparserfromhell.parse(wikitext)
    # Cut the trailing non-prose sections first (everything from their heading to the next heading
    # of the same or a higher level).
    for section in code.get_sections(include_lead=False, flat=True):
        headings = section.filter_headings(recursive=False)
        if headings and headings[0].title.strip_code().strip().lower() in _DROP_SECTIONS:
            try:
                code.remove(section)
            except ValueError:
                pass
    for node in code.filter(recursive=False):
        _strip_node(code, node)
    lines = []
    for line in code.strip_code(normalize=True, collapse=True).split("\n"):
        line = _SPACES.sub(" ", _LIST_MARK.sub("", line)).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def _strip_node(code, node) -> None:
    """Remove `node` from `code` if it is not prose; otherwise descend into tags and links."""
    remove = False
    if isinstance(node, (Template, Comment, Heading)):
        remove = True
    elif isinstance(node, Tag):
        tag = str(node.tag).strip().lower()
        if tag in _DROP_TAGS or node.wiki_markup == "{|":
            remove = True
        elif node.contents is not None:
            for child in node.contents.filter(recursive=False):
                _strip_node(node.contents, child)
    elif isinstance(node, Wikilink):
        remove = _drop_link(str(node.title))
    if remove:
        try:
            code.remove(node)
        except ValueError:
            pass
