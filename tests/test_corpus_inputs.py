"""Every input format, and every kind of bad input, through the real corpus stage."""

import bz2
import gzip
import json
import os
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from hebrew_lm.cli import main
from hebrew_lm.corpus.config import InputSpec
from hebrew_lm.corpus.readers import read_input, resolve_inputs

from helpers import build, read_corpus, reasons


@pytest.fixture
def lines(hebrew_lines):
    return hebrew_lines[:40]


def write_lines(path, lines, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_plain_text_by_line_and_by_paragraph(tmp_path, lines):
    write_lines(tmp_path / "a.txt", lines[:10])
    (tmp_path / "b.txt").write_text("\n\n".join("\n".join(lines[i:i + 2]) for i in range(10, 20, 2)) + "\n", encoding="utf-8")
    stats, _ = build(tmp_path / "out", [tmp_path / "a.txt", {"path": str(tmp_path / "b.txt"), "doc_per": "paragraph"}])
    assert stats["sources"][str(tmp_path / "a.txt")]["kept"] == 10
    assert stats["sources"][str(tmp_path / "b.txt")]["kept"] == 5
    paragraphs = [r["text"] for r in read_corpus(tmp_path / "out") if "b.txt" in r["id"]]
    assert all(text.count("\n") == 1 for text in paragraphs)
    assert {r["id"] for r in read_corpus(tmp_path / "out") if "b.txt" in r["id"]} == {
        f"{tmp_path / 'b.txt'}:{n}" for n in (1, 4, 7, 10, 13)}


def test_jsonl_parquet_and_every_compression(tmp_path, lines):
    write_lines(tmp_path / "t.txt.gz", lines[0:5], gzip.open)
    write_lines(tmp_path / "t.txt.bz2", lines[5:10], bz2.open)
    with open(tmp_path / "t.txt.zst", "wb") as f:
        f.write(zstandard.ZstdCompressor().compress(("\n".join(lines[10:15]) + "\n").encode()))
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as f:
        for line in lines[15:20]:
            f.write(json.dumps({"body": line, "url": "x"}, ensure_ascii=False) + "\n")
    pq.write_table(pa.table({"content": lines[20:25]}), tmp_path / "p.parquet")
    stats, rejects = build(tmp_path / "out", [
        str(tmp_path / "t.txt.*"),
        {"path": str(tmp_path / "d.jsonl.gz"), "text_field": "body"},
        {"path": str(tmp_path / "p.parquet"), "text_field": "content", "name": "pq"},
    ])
    assert stats["kept"]["documents"] == 25 and not rejects
    assert stats["sources"]["pq"]["kept"] == 5
    assert sorted(r["text"] for r in read_corpus(tmp_path / "out")) == sorted(lines[:25])


WIKI_PAGE = """  <page>
    <title>{title}</title>
    <ns>{ns}</ns>
    <id>{id}</id>{redirect}
    <revision><id>1</id><text xml:space="preserve">{text}</text></revision>
  </page>
"""
WIKI_ARTICLE = ("{{{{מידע כללי|שם=ירושלים}}}}\n'''ירושלים''' היא [[עיר]] ב[[ישראל|מדינת ישראל]] ובירתה."
                "&lt;ref&gt;מקור חשוב&lt;/ref&gt; היא מן הערים העתיקות בעולם.\n== היסטוריה ==\n"
                "העיר נוסדה לפני אלפי שנים והייתה מרכז דתי ומדיני.\n{{| class=\"wikitable\"\n| תא || תא\n|}}\n"
                "[[קטגוריה:ערים בישראל]]\n[[en:Jerusalem]]\n== קישורים חיצוניים ==\n* [http://x.org אתר רשמי]\n")


def wiki_dump(pages, cut_at=None):
    xml = '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" xml:lang="he">\n<siteinfo><sitename>ויקיפדיה</sitename></siteinfo>\n'
    for i, (title, ns, text, redirect) in enumerate(pages):
        xml += WIKI_PAGE.format(title=title, ns=ns, id=i + 1, text=text,
                                redirect='\n    <redirect title="x" />' if redirect else "")
    xml += "</mediawiki>\n"
    return xml if cut_at is None else xml[: xml.index(cut_at)]


def test_wikipedia_dump_streamed_to_article_prose(tmp_path):
    pages = [("ירושלים", 0, WIKI_ARTICLE.format(), False), ("ירושלם", 0, "#הפניה [[ירושלים]]", True),
             ("שיחה:ירושלים", 1, "דיון על הערך ירושלים והעיר העתיקה", False)]
    with bz2.open(tmp_path / "hewiki-latest-pages-articles.xml.bz2", "wt", encoding="utf-8") as f:
        f.write(wiki_dump(pages))
    stats, rejects = build(tmp_path / "out", [tmp_path / "hewiki-latest-pages-articles.xml.bz2"])
    assert reasons(rejects) == {"wiki_not_article": 2}
    (doc,) = read_corpus(tmp_path / "out")
    assert doc["text"] == ("ירושלים היא עיר במדינת ישראל ובירתה. היא מן הערים העתיקות בעולם.\n"
                           "העיר נוסדה לפני אלפי שנים והייתה מרכז דתי ומדיני.")


def test_xml_dump_cut_off_mid_page_keeps_complete_pages(tmp_path):
    pages = [(f"ערך {i}", 0, f"זהו ערך מספר {i} בוויקיפדיה העברית ויש בו מספיק מילים", False) for i in range(3)]
    xml = wiki_dump(pages, cut_at="<title>ערך 2")
    with bz2.open(tmp_path / "cut.xml.bz2", "wt", encoding="utf-8") as f:
        f.write(xml)
    stats, rejects = build(tmp_path / "out", [tmp_path / "cut.xml.bz2"])
    assert stats["kept"]["documents"] == 2
    (r,) = rejects
    assert r["reason"] == "truncated_file" and r["where"].startswith(str(tmp_path / "cut.xml.bz2") + ":")


def test_bad_documents_are_counted_rejects_naming_file_and_line(tmp_path, lines):
    good = str(tmp_path / "good.txt")
    write_lines(good, lines[:5])
    raw = b"\n".join([lines[5].encode(), b"\xff\xfe broken \xc3\x28 bytes here", lines[6].encode(),
                      lines[7].encode()[:10] + b"\x00" + lines[7].encode()[10:], lines[8].encode()]) + b"\n"
    (tmp_path / "mixed.txt").write_bytes(raw)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 64)
    with open(tmp_path / "d.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"text": lines[9]}, ensure_ascii=False) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"body": lines[10]}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"text": 17}) + "\n")
    stats, rejects = build(tmp_path / "out", [good, tmp_path / "mixed.txt", tmp_path / "empty.txt",
                                              tmp_path / "blob.txt", tmp_path / "d.jsonl"])
    where = {r["reason"]: r["where"] for r in rejects}
    assert reasons(rejects) == {"invalid_utf8": 1, "nul_bytes": 1, "binary_file": 1, "invalid_json": 1,
                                "missing_text_field": 2}
    assert where["invalid_utf8"] == f"{tmp_path / 'mixed.txt'}:2"
    assert where["nul_bytes"] == f"{tmp_path / 'mixed.txt'}:4"
    assert where["binary_file"] == f"{tmp_path / 'blob.txt'}:1"
    assert where["invalid_json"] == f"{tmp_path / 'd.jsonl'}:2"
    assert {r["where"] for r in rejects if r["reason"] == "missing_text_field"} == {
        f"{tmp_path / 'd.jsonl'}:3", f"{tmp_path / 'd.jsonl'}:4"}
    assert stats["kept"]["documents"] == 5 + 3 + 1
    assert stats["documents_in"] == stats["kept"]["documents"] + len(rejects)


def test_truncated_gzip_keeps_what_came_before(tmp_path, lines):
    write_lines(tmp_path / "full.txt.gz", lines * 20, gzip.open)
    data = (tmp_path / "full.txt.gz").read_bytes()
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    stats, rejects = build(tmp_path / "out", [tmp_path / "cut.txt.gz"])
    assert reasons(rejects) == {"truncated_file": 1}
    assert 0 < stats["kept"]["documents"] < len(lines) * 20
    assert rejects[0]["where"].startswith(f"{tmp_path / 'cut.txt.gz'}: after ")


def test_fifty_megabyte_single_line_is_rejected_without_holding_it(tmp_path, lines):
    with open(tmp_path / "huge.txt", "w", encoding="utf-8") as f:
        f.write(lines[0] + "\n")
        chunk = ("מילה ארוכה " * 1000)
        for _ in range(50 * 1024 * 1024 // len(chunk.encode())):
            f.write(chunk)
        f.write("\n" + lines[1] + "\n")
    assert os.path.getsize(tmp_path / "huge.txt") > 50e6
    item, = resolve_inputs([InputSpec(path=str(tmp_path / "huge.txt"))])
    tracemalloc.start()
    docs = list(read_input(item, max_chars=1_000_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [d.error for d in docs] == [None, "too_long", None]
    assert docs[1].where == f"{tmp_path / 'huge.txt'}:2" and docs[1].nbytes > 50e6
    assert peak < 20e6  # a few blocks of 4 x max_chars bytes, never the 50 MB line
    stats, rejects = build(tmp_path / "out", [tmp_path / "huge.txt"])
    assert reasons(rejects) == {"too_long": 1} and stats["kept"]["documents"] == 2
    assert stats["bytes_in"] == os.path.getsize(tmp_path / "huge.txt")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: str(d / "nope.txt"), "input not found"),
        (lambda d: str(d / "*.jsonl"), "matches no file"),
        (lambda d: str(d), "is a folder"),
        (lambda d: (d / "e.txt").write_bytes(b"") and str(d / "e.txt") or str(d / "e.txt"), "nothing to read"),
        (lambda d: (d / "x.docx").write_text("שלום") and str(d / "x.docx"), "cannot tell the format"),
    ],
)
def test_what_must_stop_the_run_is_one_clear_error(tmp_path, caplog, make, message):
    target = make(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\ncorpus:\n  num_workers: 1\n")
    assert main(["corpus", "build", str(config), "--inputs", target]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in caplog.text


def test_parquet_without_the_text_column_names_the_file(tmp_path, caplog):
    pq.write_table(pa.table({"body": ["שלום עולם ומלואו"]}), tmp_path / "p.parquet")
    config = tmp_path / "c.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\ncorpus:\n  num_workers: 1\n")
    assert main(["corpus", "build", str(config), "--inputs", str(tmp_path / "p.parquet")]) == 2
    assert f"{tmp_path / 'p.parquet'}: Parquet file has no column 'text'" in caplog.text


@pytest.mark.parametrize("encoding", ["cp1255", "utf-16", "utf-16-le"])
def test_windows_1255_and_utf16_text_is_decoded_and_counted(tmp_path, lines, encoding):
    path = tmp_path / f"{encoding}.txt"
    path.write_bytes(("\n".join(lines[:6]) + "\n").encode(encoding))
    stats, rejects = build(tmp_path / "out", [path])
    assert rejects == [] and stats["kept"]["documents"] == 6
    assert stats["decoded_from"] == {encoding: 6}
    assert sorted(r["text"] for r in read_corpus(tmp_path / "out")) == sorted(lines[:6])


def test_a_corrupt_parquet_file_is_an_error_naming_it(tmp_path, caplog):
    pq.write_table(pa.table({"text": ["שלום עולם ומלואו כולו כאן"] * 50}), tmp_path / "p.parquet")
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "p.parquet").write_bytes(data[:40] + b"\x00" * 200 + data[240:])
    (tmp_path / "q.parquet").write_bytes(b"PAR1 not really parquet")
    config = tmp_path / "c.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\ncorpus:\n  num_workers: 1\n")
    for name in ("p.parquet", "q.parquet"):
        caplog.clear()
        assert main(["corpus", "build", str(config), "--inputs", str(tmp_path / name)]) == 2
        assert f"{tmp_path / name}: not a readable Parquet file" in caplog.text


def test_a_symlink_loop_under_a_recursive_glob_reads_each_file_once(tmp_path, lines):
    (tmp_path / "in" / "a").mkdir(parents=True)
    write_lines(tmp_path / "in" / "a" / "t.txt", lines[:3])
    (tmp_path / "in" / "a" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)
    items = resolve_inputs([InputSpec(path=str(tmp_path / "in" / "**" / "*.txt"))])
    assert [i.path for i in items] == [str(tmp_path / "in" / "a" / "t.txt")]
    # The same file named twice (two inputs) is read once too.
    items = resolve_inputs([InputSpec(path=str(tmp_path / "in" / "a" / "t.txt")),
                            InputSpec(path=str(tmp_path / "in" / "a" / "loop" / "a" / "t.txt"))])
    assert len(items) == 1
