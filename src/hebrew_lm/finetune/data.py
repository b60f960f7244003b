"""Labelled data for fine-tuning: readers, validation and label-scheme conversion.

Two kinds of task:
- NER: sentences of words with one BIOES (or BIO) tag per word, as NEMO's `token-single` files and
  BMC's splits hold them (`word TAG` per line, blank line between sentences).
- Classification: texts with one label each, as SMCD's TSV files hold them (`text<TAB>label`).

Bad input is an error naming the file and line. Problems a user may choose to live with (an
illegal BIOES transition) are counted and reported, and `repair` fixes them.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hebrew_lm.labels import TAG_RE, bio_to_bioes, bioes_violations, repair_bioes, tag_type
from hebrew_lm.records import Example, Sentence, jsonl_records, read_lines

log = logging.getLogger("hebrew_lm")


@dataclass
class Split:
    """One task's train, dev and test data, with what loading it found."""

    train: list
    dev: list
    test: list
    labels: list[str]
    """NER: entity types; classification: the label set, in a fixed order."""
    notes: list[str] = field(default_factory=list)
    """Warnings found on load (repaired transitions, dropped empty sentences), reported in the results."""


# --------------------------------------------------------------------------------------------------
# Readers


def _to_bioes(sentences: list[Sentence], scheme: str) -> str:
    """Convert BIO sentences to BIOES in place (keeping the file's tags for messages); returns the scheme found."""
    found = "bioes" if any(t[0] in "ES" for s in sentences for t in s.tags) else "bio"
    if scheme == "bio" or (scheme == "auto" and found == "bio"):
        for s in sentences:
            s.file_tags, s.tags = s.tags, bio_to_bioes(s.tags)
    return found


def read_tagged(path: str | Path, scheme: str = "auto", require_tags: bool = True,
                spaced_words: bool = False) -> tuple[list[Sentence], str]:
    """Sentences of `word TAG` lines, blank line between sentences; returns them and the scheme found,
    "bioes" or "bio" (BIO is converted to BIOES).

    A line is `word TAG` split on whitespace, or tab-separated columns (word first, tag last, the same
    count on every line). A space-separated line with more than two columns is an error, unless
    `spaced_words` (NEMO's files, which hold a few words with spaces inside: only the last space splits).
    Trailing spaces and tabs are ignored."""
    path = Path(path)
    if path.suffix == ".jsonl":
        sentences = _read_tagged_jsonl(path)
        return sentences, _to_bioes(sentences, scheme)
    sentences = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    columns: int | None = None
    for n, line in enumerate(read_lines(path), start=1):
        line = line.rstrip()
        if not line.strip():
            if words:
                sentences.append(Sentence(words, tags, f"{path}:{start}"))
            words, tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        if not words:
            start = n
        parts = line.split("\t") if "\t" in line else line.rsplit(None, 1) if spaced_words else line.split()
        if len(parts) > 2 and "\t" not in line:
            raise ValueError(f"{path}:{n}: {len(parts)} space-separated columns ({line[:60]!r}); expected 2, "
                             "`word TAG` (for CoNLL files with more columns, separate them with tabs: the last "
                             "one is read as the tag)")
        if len(parts) == 1:
            if require_tags:
                raise ValueError(f"{path}:{n}: expected `word TAG`, found one column ({line[:60]!r}); "
                                 "a test file needs its gold labels")
            words.append(parts[0])
            continue
        if "\t" in line:
            if columns is None:
                columns = len(parts)
            elif len(parts) != columns:
                raise ValueError(f"{path}:{n}: {len(parts)} columns where earlier lines have {columns}")
        word, tag = parts[0], parts[-1].strip()
        if not TAG_RE.match(tag):
            raise ValueError(f"{path}:{n}: {tag!r} is not a BIOES/BIO tag (O, B-X, I-X, E-X or S-X)")
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append(Sentence(words, tags, f"{path}:{start}"))
    if not sentences:
        raise ValueError(f"{path}: no sentences")
    return sentences, _to_bioes(sentences, scheme)


def _read_tagged_jsonl(path: Path) -> list[Sentence]:
    """One sentence per line: {"tokens": [...], "tags": [...]} (also `words`/`ner_tags` as field names)."""
    sentences = []
    for n, record in jsonl_records(path):
        words = record.get("tokens", record.get("words"))
        tags = record.get("tags", record.get("ner_tags"))
        if not isinstance(words, list) or not isinstance(tags, list):
            raise ValueError(f"{path}:{n}: needs `tokens` and `tags` lists")
        if len(words) != len(tags):
            raise ValueError(f"{path}:{n}: {len(words)} tokens but {len(tags)} tags")
        for tag in tags:
            if not isinstance(tag, str) or not TAG_RE.match(tag):
                raise ValueError(f"{path}:{n}: {tag!r} is not a BIOES/BIO tag (O, B-X, I-X, E-X or S-X)")
        sentences.append(Sentence([str(w) for w in words], list(tags), f"{path}:{n}", one_line=True))
    if not sentences:
        raise ValueError(f"{path}: no sentences")
    return sentences


LABEL_HEADERS = ("label", "labels", "sentiment", "class", "category")
TEXT_HEADERS = ("text", "comment", "sentence", "review", "content", "tweet")


def read_classification(path: str | Path, text_field: str = "text", label_field: str = "label",
                        known_labels: set[str] | None = None) -> list[Example]:
    """`text<TAB>label` lines, or JSONL with text and label fields.

    A first TSV line is a header when its last column is a usual label-column name, or a value that is
    neither a label of any other line nor in `known_labels` (the train file's labels, for dev and test):
    a header is never read as an example with a new class. A file whose header or content says it has
    no labels (SMCD's test.tsv) is an error pointing at its gold file."""
    path = Path(path)
    examples = []
    if path.suffix == ".jsonl":
        for n, record in jsonl_records(path):
            if text_field not in record or label_field not in record:
                raise ValueError(f"{path}:{n}: needs fields {text_field!r} and {label_field!r}")
            examples.append(Example(str(record[text_field]), str(record[label_field]), f"{path}:{n}"))
        if not examples:
            raise ValueError(f"{path}: no examples")
        return examples
    rows = [(n, line.rstrip().split("\t")) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
    no_labels = (f"{path}: this file has no labels; a test file needs its gold labels "
                 "(SMCD: test_gold.tsv, not test.tsv)")
    if rows:
        first = rows[0][1][-1].strip()
        later = {parts[-1].strip() for _, parts in rows[1:]}
        if first.lower() in TEXT_HEADERS:
            raise ValueError(f"{no_labels}: its header {rows[0][1]} names no label column")
        if len(rows) > 1 and (first.lower() in LABEL_HEADERS or (first not in later and first not in (known_labels or ()))):
            log.info("%s:%d: header row %s skipped", path, rows[0][0], rows[0][1])
            rows = rows[1:]
    for n, parts in rows:
        if len(parts) < 2 or not parts[-1].strip():
            raise ValueError(f"{path}:{n}: expected `text<TAB>label`, found no label; a test file needs its "
                             "gold labels (SMCD: test_gold.tsv, not test.tsv)")
        examples.append(Example("\t".join(parts[:-1]).strip(), parts[-1].strip(), f"{path}:{n}"))
    if not examples:
        raise ValueError(f"{path}: no examples")
    labels = {e.label for e in examples}
    if len(examples) >= 20 and len(labels) > len(examples) / 2 and not labels & set(known_labels or ()):
        raise ValueError(f"{no_labels}: its last column holds {len(labels)} different values in {len(examples)} lines")
    return examples


# --------------------------------------------------------------------------------------------------
# Validation across a task's splits


def check_ner(train: list[Sentence], dev: list[Sentence], test: list[Sentence], repair: bool,
              types: list[str] | None = None) -> tuple[list[Sentence], list[Sentence], list[Sentence], list[str], list[str]]:
    """Drop empty sentences, find illegal transitions (repair them or fail), and refuse dev/test types that
    train never shows (or that are outside `types`). Returns the splits, the entity types and notes."""
    notes = []
    splits = []
    known = sorted({tag_type(t) for s in train for t in s.tags} - {""}) if types is None else list(types)
    for name, sentences in (("train", train), ("dev", dev), ("test", test)):
        kept = [s for s in sentences if s.words]
        if len(kept) < len(sentences):
            notes.append(f"{name}: {len(sentences) - len(kept)} empty sentences dropped")
        broken = 0
        for s in kept:
            unknown = {tag_type(t) for t in s.tags} - set(known) - {""}
            if unknown:
                raise ValueError(f"{s.where}: entity type(s) {sorted(unknown)} not in the label set {known}")
            bad = bioes_violations(s.tags)
            if bad:
                broken += 1
                if not repair:
                    i = bad[0]
                    file, _, line = s.where.rpartition(":")
                    at = f"{s.where}: token {i}" if s.one_line else f"{file}:{int(line) + i}"
                    tags, scheme = (s.file_tags, "BIO") if s.file_tags else (s.tags, "BIOES")
                    raise ValueError(
                        f"{at}: illegal {scheme} transition "
                        f"{tags[i - 1] if i else 'start'} -> {tags[i]} ({s.words[i]!r}); "
                        "fix the file or set repair_tags: true"
                    )
                s.tags = repair_bioes(s.tags)
        if broken:
            notes.append(f"{name}: {broken} sentences with illegal BIOES transitions repaired")
            log.warning("%s: %d sentences with illegal BIOES transitions repaired", name, broken)
        splits.append(kept)
    return splits[0], splits[1], splits[2], known, notes


def check_classification(train: list[Example], dev: list[Example], test: list[Example],
                         labels: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Empty texts and labels that train never shows are errors; a class missing from dev/test is a note."""
    known = sorted({e.label for e in train}) if labels is None else list(labels)
    notes = []
    for name, examples in (("train", train), ("dev", dev), ("test", test)):
        for e in examples:
            if not e.text.strip():
                raise ValueError(f"{e.where}: empty text")
            if e.label not in known:
                raise ValueError(f"{e.where}: label {e.label!r} is not in the label set {known}")
        missing = set(known) - {e.label for e in examples}
        if missing:
            notes.append(f"{name}: no examples of label(s) {sorted(missing)}")
    counts = Counter(e.label for e in train)
    notes.append("train label counts: " + ", ".join(f"{k}={counts[k]}" for k in known))
    return known, notes
