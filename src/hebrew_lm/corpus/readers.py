"""Readers: every input (plain text, JSONL, Parquet, MediaWiki XML dump, embedded source) as a stream
of `RawDoc`s. A document the reader cannot use comes out with `error` set to the reason, so it is
counted and written to the rejects file rather than lost; only what must stop the run (a missing
path, a glob matching nothing, a Parquet file without the text column) raises.

    for doc in read_input(InputSpec("hewiki-latest-pages-articles.xml.bz2"), max_chars=1_000_000): ...
"""

from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hebrew_lm.corpus.config import InputSpec
from hebrew_lm.records import RawDoc
from hebrew_lm.runs import sha256_file

log = logging.getLogger("hebrew_lm")

COMPRESSIONS = (".gz", ".bz2", ".zst")
EMBEDDED_PREFIX = "embedded:"


@dataclass
class ResolvedInput:
    spec: InputSpec
    path: str  # a file path, or the embedded source's name
    format: str
    size_estimate: int  # uncompressed bytes, for the progress bar and the shuffle buckets


def _format_of(path: str) -> str:
    name = path.lower()
    for ext in COMPRESSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith((".txt", ".text")):
        return "text"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".xml"):
        return "wiki"
    raise ValueError(
        f"cannot tell the format of {path} from its name; set `format:` (text, jsonl, parquet, wiki) on that input"
    )


def resolve_inputs(specs: list[InputSpec]) -> list[ResolvedInput]:
    """Expand globs and check that every input exists; errors name the input."""
    from hebrew_lm.embedded import sources as embedded

    resolved = []
    seen: dict[str, str] = {}  # real path -> the path it was first read as
    for i, spec in enumerate(specs):
        if spec.path.startswith(EMBEDDED_PREFIX):
            name = spec.path[len(EMBEDDED_PREFIX):]
            size = embedded.size_estimate(name)  # raises for an unknown name
            resolved.append(ResolvedInput(spec, name, "embedded", size))
            continue
        if glob.has_magic(spec.path):
            paths = sorted(p for p in glob.glob(spec.path, recursive=True) if os.path.isfile(p))
            if not paths:
                raise ValueError(f"corpus.inputs[{i}]: the glob {spec.path!r} matches no file")
        else:
            if not os.path.exists(spec.path):
                raise ValueError(f"corpus.inputs[{i}]: input not found: {spec.path}")
            if os.path.isdir(spec.path):
                raise ValueError(
                    f"corpus.inputs[{i}]: {spec.path} is a folder; give a glob such as {spec.path}/**/*.txt"
                )
            paths = [spec.path]
        # Each real file once, under its shortest name: a recursive glob through a symlink loop (or two
        # overlapping inputs) would otherwise read the same file many times.
        reals = [os.path.realpath(path) for path in paths]
        shortest: dict[str, str] = {}
        for path, real in zip(paths, reals):
            if real not in seen and (real not in shortest or len(path) < len(shortest[real])):
                shortest[real] = path
        for path, real in zip(paths, reals):
            if shortest.get(real) != path:
                log.info("corpus: %s is %s again (the same file); read once", path, seen.get(real, shortest.get(real)))
                continue
            seen[real] = path
            fmt = spec.format if spec.format != "auto" else _format_of(path)
            size = os.path.getsize(path)
            if path.lower().endswith(COMPRESSIONS):
                size *= 4  # a typical ratio for text; only sizes the progress bar and the shuffle buckets
            resolved.append(ResolvedInput(spec, path, fmt, size))
    return resolved


def open_binary(path: str) -> BinaryIO:
    """Open a file for reading bytes, decompressing .gz, .bz2 and .zst on the fly."""
    lower = path.lower()
    if lower.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if lower.endswith(".bz2"):
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if lower.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))  # type: ignore[arg-type]
    return open(path, "rb")


# Errors a compressed stream raises when the file was cut short or is corrupt.
def _stream_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [EOFError, OSError, gzip.BadGzipFile]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


STREAM_ERRORS = _stream_errors()


def text_encoding(head: bytes) -> str:
    """The encoding of a text file from its first bytes: utf-8, or what Hebrew text often comes in otherwise:
    UTF-16 (a BOM; or, without one, bytes that read as Hebrew text in UTF-16) and Windows-1255 (bytes that
    are not UTF-8 and read as Hebrew text in it). Anything else is left to `_looks_binary`."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding, sample in (("utf-16-le", head[: len(head) // 2 * 2]), ("utf-16-be", head[: len(head) // 2 * 2]),
                             ("cp1255", head)):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        if _reads_as_hebrew(text):
            return encoding
    return "utf-8"


def _reads_as_hebrew(text: str) -> bool:
    """Mostly letters, most of them Hebrew, and (almost) no control characters."""
    letters = [ch for ch in text if ch.isalpha()]
    hebrew = sum(1 for ch in letters if "\u05d0" <= ch <= "\u05ea")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r")
    return (len(letters) > 0.3 * len(text) and hebrew > 0.3 * len(letters)
            and controls < 0.01 * len(text))


def _looks_binary(head: bytes) -> bool:
    """True for content that is not text: many NULs/control bytes or undecodable bytes in the first block."""
    if not head:
        return False
    text = head.decode("utf-8", errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f\v"))
    return bad / max(1, len(text)) > 0.10


def _iter_lines(f: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, line bytes, byte count); a line longer than `limit` bytes comes as None and is
    skipped in blocks, so a 50 MB single-line document is never held in memory."""
    lineno = 0
    while True:
        line = f.readline(limit)
        if not line:
            return
        lineno += 1
        if len(line) >= limit and not line.endswith(b"\n"):
            total = len(line)
            while True:
                more = f.readline(limit)
                total += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield lineno, None, total
        else:
            yield lineno, line, len(line)


def _decode(raw: bytes, source: str, where: str) -> RawDoc:
    if b"\x00" in raw:
        return RawDoc(raw.decode("utf-8", errors="replace").replace("\x00", ""), source, where, len(raw), "nul_bytes")
    try:
        return RawDoc(raw.decode("utf-8"), source, where, len(raw))
    except UnicodeDecodeError:
        return RawDoc(raw.decode("utf-8", errors="replace"), source, where, len(raw), "invalid_utf8")


def _read_text(path: str, source: str, doc_per: str, max_chars: int) -> Iterator[RawDoc]:
    limit = 4 * max_chars + 8  # UTF-8 needs at most 4 bytes a character
    with open_binary(path) as f:
        head = f.peek(8192)[:8192] if hasattr(f, "peek") else b""
        encoding = text_encoding(head)
        if encoding != "utf-8":
            log.warning("%s: not UTF-8 but %s; decoded from it (its documents are counted under `decoded_from` "
                        "in stats.json)", path, encoding)
            docs = _read_text_lines(codecs.EncodedFile(f, "utf-8", encoding, errors="replace"), path, source,
                                    doc_per, limit)
            for doc in docs:
                doc.encoding = encoding
                yield doc
            return
        if _looks_binary(head):
            size = os.path.getsize(path)
            log.warning("%s: looks like a binary file, not text; skipped (counted as `binary_file`)", path)
            yield RawDoc("", source, f"{path}:1", size, "binary_file")
            return
        yield from _read_text_lines(f, path, source, doc_per, limit)


def _read_text_lines(f: BinaryIO, path: str, source: str, doc_per: str, limit: int) -> Iterator[RawDoc]:
    """Documents of a UTF-8 byte stream: one a line, or one a paragraph."""
    if doc_per == "line":
        for lineno, line, nbytes in _iter_lines(f, limit):
            if line is None:
                yield RawDoc("", source, f"{path}:{lineno}", nbytes, "too_long")
            elif line.strip():
                yield _decode(line, source, f"{path}:{lineno}")
        return
    parts: list[bytes] = []
    size, start, oversize = 0, 0, False
    for lineno, line, nbytes in _iter_lines(f, limit):
        if line is not None and not line.strip():
            if parts or oversize:
                yield (RawDoc("", source, f"{path}:{start}", size, "too_long") if oversize
                       else _decode(b"".join(parts), source, f"{path}:{start}"))
            parts, size, oversize = [], 0, False
            continue
        if not parts and not oversize:
            start = lineno
        size += nbytes
        if line is None or size > limit:
            oversize, parts = True, []
        else:
            parts.append(line)
    if parts or oversize:
        yield (RawDoc("", source, f"{path}:{start}", size, "too_long") if oversize
               else _decode(b"".join(parts), source, f"{path}:{start}"))


def _read_jsonl(path: str, source: str, field: str, max_chars: int) -> Iterator[RawDoc]:
    limit = 4 * max_chars + 8 + 1024
    with open_binary(path) as f:
        for lineno, line, nbytes in _iter_lines(f, limit):
            where = f"{path}:{lineno}"
            if line is None:
                yield RawDoc("", source, where, nbytes, "too_long")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                yield RawDoc(line.decode("utf-8", errors="replace")[:10_000], source, where, nbytes, "invalid_json")
                continue
            text = record.get(field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                yield RawDoc(line.decode("utf-8", errors="replace")[:10_000], source, where, nbytes, "missing_text_field")
                continue
            doc = RawDoc(text, source, where, nbytes)
            if "\x00" in text:
                doc.error, doc.text = "nul_bytes", text.replace("\x00", "")
            yield doc


def _read_parquet(path: str, source: str, field: str) -> Iterator[RawDoc]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        if path.lower().endswith(COMPRESSIONS):
            with open_binary(path) as f:
                pf = pq.ParquetFile(pa.BufferReader(f.read()))
        else:
            pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if field not in names:
            raise ValueError(f"{path}: Parquet file has no column {field!r} (columns: {', '.join(names)}); "
                             "set `text_field:`")
        for batch in pf.iter_batches(columns=[field], batch_size=1024):
            for text in batch.column(0).to_pylist():
                row += 1
                where = f"{path}:row {row}"
                if not isinstance(text, str):
                    yield RawDoc("", source, where, 0, "missing_text_field")
                    continue
                nbytes = len(text.encode("utf-8"))
                yield RawDoc(text, source, where, nbytes, "nul_bytes" if "\x00" in text else None)
    except (pa.ArrowException, OSError, EOFError) as e:
        at = f" after row {row}" if row else ""
        raise ValueError(f"{path}: not a readable Parquet file{at} ({e})") from None


def _read_wiki(path: str, source: str) -> Iterator[RawDoc]:
    """Stream a MediaWiki pages-articles dump: one document per article (namespace 0, not a redirect)."""
    import xml.etree.ElementTree as ET

    from hebrew_lm.corpus.wiki import wikitext_to_text

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    with open_binary(path) as f:
        root = None
        pages = 0
        try:
            for event, elem in ET.iterparse(f, events=("start", "end")):
                if root is None:
                    root = elem
                if event != "end" or local(elem.tag) != "page":
                    continue
                pages += 1
                fields = {local(child.tag): child for child in elem}
                title = (fields["title"].text or "") if "title" in fields else ""
                ns = (fields["ns"].text or "0").strip() if "ns" in fields else "0"
                text = ""
                for node in elem.iter():
                    if local(node.tag) == "text":
                        text = node.text or ""
                where = f"{path}:page {pages} ({title})"
                nbytes = len(text.encode("utf-8"))
                if ns != "0" or "redirect" in fields:
                    yield RawDoc("", source, where, nbytes, "wiki_not_article")
                else:
                    yield RawDoc(wikitext_to_text(text), source, where, nbytes)
                root.clear()  # pages already read must not pile up under the root
        except ET.ParseError as e:
            line = e.position[0] if getattr(e, "position", None) else "?"
            log.warning("%s: XML breaks off at line %s (%s); %d complete pages kept", path, line, e, pages)
            yield RawDoc("", source, f"{path}:{line}", 0, "truncated_file")
        except STREAM_ERRORS as e:
            log.warning("%s: compressed stream cut short (%s); %d complete pages kept", path, e, pages)
            yield RawDoc("", source, f"{path}:page {pages + 1}", 0, "truncated_file")


def read_input(item: ResolvedInput, max_chars: int) -> Iterator[RawDoc]:
    """All documents of one resolved input. A file cut short yields a `truncated_file` reject at the
    line where it broke, after every complete document before it."""
    spec, path, source = item.spec, item.path, item.spec.name
    if item.format == "embedded":
        from hebrew_lm.embedded import sources as embedded

        yield from embedded.read(path, source)
        return
    if os.path.getsize(path) == 0:
        log.warning("%s: empty file, nothing to read", path)
        return
    if item.format == "wiki":
        yield from _read_wiki(path, source)
        return
    if item.format == "parquet":
        yield from _read_parquet(path, source, spec.text_field)
        return
    reader = (_read_text(path, source, spec.doc_per, max_chars) if item.format == "text"
              else _read_jsonl(path, source, spec.text_field, max_chars))
    last_where = f"{path}:1"
    try:
        for doc in reader:
            last_where = doc.where
            yield doc
    except STREAM_ERRORS as e:
        log.warning("%s: file cut short or corrupt after %s (%s)", path, last_where, e)
        yield RawDoc("", source, f"{path}: after {last_where.rsplit(':', 1)[-1]}", 0, "truncated_file")


def input_fingerprint(items: list[ResolvedInput], known: dict[str, dict] | None = None) -> tuple[list[list], dict[str, dict]]:
    """What identifies the inputs for the `_SUCCESS` fingerprint: each file's path, size and content
    (sha256), so a copy of the same data (a new mtime) is the same input and an edit is not. Returns it
    with the record the build keeps in its `_SUCCESS` (size, mtime, sha256 per file): a later check reuses
    the hash of a file whose size and mtime are unchanged instead of reading it again (so an edit that
    keeps both, which only a deliberate `touch -d` makes, goes unseen, as it did when mtimes were the key)."""
    out, record = [], {}
    for item in items:
        if item.format == "embedded":
            out.append([f"embedded:{item.path}", item.size_estimate])
            continue
        st = Path(item.path).stat()
        seen = (known or {}).get(item.path) or {}
        same = seen.get("size") == st.st_size and seen.get("mtime_ns") == st.st_mtime_ns
        record[item.path] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                             "sha256": same and seen.get("sha256") or sha256_file(Path(item.path))}
        out.append([item.path, st.st_size, record[item.path]["sha256"]])
    return out, record
