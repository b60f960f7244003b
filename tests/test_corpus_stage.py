"""The corpus stage as a whole: output layout, stats invariant, reruns, determinism and resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml

from hebrew_lm.cli import main
from hebrew_lm.corpus.stage import run

from helpers import build, corpus_files, read_corpus, read_stats, run_ok


@pytest.fixture
def corpus_input(tmp_path, hebrew_docs):
    """Bible and Mishnah chapters as JSONL, with some exact copies and some too-short lines."""
    path = tmp_path / "in.jsonl"
    rng = random.Random(0)
    docs = hebrew_docs[:300] + rng.sample(hebrew_docs[:300], 20) + ["קצר מדי"] * 5
    rng.shuffle(docs)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    return path


def test_output_layout_stats_invariant_and_splits(tmp_path, corpus_input):
    out = tmp_path / "out"
    stats, rejects = build(out, [corpus_input], exact_dedup=True, near_dedup=True, validation_fraction=0.1,
                           shard_size_mb=0.25, shuffle_buffer_mb=1)
    names = {p.name for p in out.iterdir()}
    assert {"_SUCCESS", "config.yaml", "stats.json", "manifest.json", "rejects.jsonl.gz", "stats.png"} <= names
    assert "_work" not in names
    dropped = sum(d["documents"] for d in stats["dropped"].values())
    assert stats["documents_in"] == 325 == stats["kept"]["documents"] + dropped
    assert stats["bytes_in"] == stats["kept"]["bytes_in"] + sum(d["bytes_in"] for d in stats["dropped"].values())
    assert stats["dropped"]["too_short"]["documents"] == 5
    assert stats["duplicates"]["exact"] >= 15  # most of the 20 planted copies (some copy a filtered chapter)
    assert len(rejects) == dropped
    train, val = read_corpus(out, "train"), read_corpus(out, "validation")
    assert len(train) + len(val) == stats["kept"]["documents"]
    assert 0.04 < len(val) / (len(train) + len(val)) < 0.2
    assert not {r["text"] for r in train} & {r["text"] for r in val}
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["splits"]["train"]["shards"]) > 1  # 0.25 MB shards
    assert yaml.safe_load((out / "config.yaml").read_text())["validation_fraction"] == 0.1


def test_shards_load_with_hugging_face_datasets(tmp_path, corpus_input):
    import datasets

    out = tmp_path / "out"
    build(out, [corpus_input], validation_fraction=0.1)
    ds = datasets.load_dataset("parquet", data_files={"train": str(out / "train-*.parquet"),
                                                      "validation": str(out / "validation-*.parquet")},
                               cache_dir=str(tmp_path / "hf"))
    assert ds["train"].column_names == ["id", "source", "text"]
    assert ds["train"].num_rows == read_stats(out)["splits"]["train"]["documents"]


def test_rerun_is_a_noop_and_a_changed_config_is_refused(tmp_path, corpus_input, caplog):
    config = tmp_path / "c.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\ncorpus:\n  num_workers: 1\n  inputs: [{corpus_input}]\n")
    assert main(["corpus", "build", str(config)]) == 0
    out = tmp_path / "run" / "corpus"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    caplog.clear()
    assert main(["corpus", "build", str(config)]) == 0
    assert "nothing to do" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert main(["corpus", "build", str(config), "--min_words", "300"]) == 2
    assert "--force" in caplog.text
    assert main(["corpus", "build", str(config), "--min_words", "300", "--force"]) == 0
    assert read_stats(out)["dropped"]["too_short"]["documents"] > 5


def test_refuses_to_write_into_a_foreign_folder(tmp_path, corpus_input):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="refusing to write"):
        build(out, [corpus_input])
    assert (out / "thesis.tex").read_text() == "precious"


def test_output_does_not_depend_on_the_number_of_workers(tmp_path, corpus_input):
    build(tmp_path / "one", [corpus_input], num_workers=1, near_dedup=True, exact_dedup=True, validation_fraction=0.1)
    build(tmp_path / "two", [corpus_input], num_workers=2, near_dedup=True, exact_dedup=True, validation_fraction=0.1)
    assert corpus_files(tmp_path / "one") == corpus_files(tmp_path / "two")


@pytest.mark.slow
def test_killed_build_resumes_to_identical_output(tmp_path, hebrew_docs):
    """SIGKILL a real `hebrew-lm corpus build` at several points (in the scan, and as soon as the scan
    has finished), rerun, and compare every output file with an uninterrupted build's."""
    path = tmp_path / "in.txt"
    # Chapters, then the same chapters with their verses in reverse order: about 9 MB, a few seconds' scan.
    docs = hebrew_docs + ["\n".join(reversed(d.split("\n"))) for d in hebrew_docs]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    def config(name):
        c = tmp_path / f"{name}.yaml"
        c.write_text(yaml.safe_dump({"run_dir": str(tmp_path / name), "corpus": {
            "inputs": [{"path": str(path), "doc_per": "paragraph"}], "num_workers": 2,
            "validation_fraction": 0.05, "shard_size_mb": 1, "shuffle_buffer_mb": 2}}))
        return c
    cmd = [sys.executable, "-m", "hebrew_lm", "corpus", "build"]
    run_ok(cmd + [str(config("reference"))])
    reference = corpus_files(tmp_path / "reference" / "corpus")

    out = tmp_path / "killed" / "corpus"
    kill_config = config("killed")
    kills = [("scan", 0.0), ("scan", 0.5), ("after-scan", 0.0)]

    def reached(phase: str, since: int) -> bool:
        """Whether *this* process got to the point: a file it wrote (mtime after its start), not one an
        earlier killed run left behind. In the scan: a shuffle bucket holding documents."""
        files = [out / "_work" / "scan.json"] if phase == "after-scan" else list((out / "_work").glob("*-0000*.jsonl"))
        for f in files:
            try:
                st = f.stat()
            except FileNotFoundError:  # removed by the restart at that moment
                continue
            if st.st_mtime_ns >= since and st.st_size > 0:
                return True
        return False

    for phase, delay in kills:
        since = time.time_ns()
        proc = subprocess.Popen(cmd + [str(kill_config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 120
        while not reached(phase, since) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        assert reached(phase, since), f"the kill point in {phase} was never reached"
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / "_SUCCESS").exists(), f"the build finished before the kill in {phase}"
        assert phase == "after-scan" or not (out / "_work" / "scan.json").exists(), "killed after the scan, not in it"
    run_ok(cmd + [str(kill_config)])
    assert (out / "_SUCCESS").exists()
    assert corpus_files(out) == reference


def test_changed_inputs_are_refused_until_force(tmp_path, corpus_input, caplog):
    build(tmp_path / "out", [corpus_input])
    with open(corpus_input, "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "שורה חדשה שנוספה לקובץ אחרי הבנייה הראשונה שלו"}, ensure_ascii=False) + "\n")
    with pytest.raises(ValueError, match="another config or other inputs"):
        build(tmp_path / "out", [corpus_input])
    from hebrew_lm.corpus.config import CorpusConfig, InputSpec

    run(CorpusConfig(output_dir=str(tmp_path / "out"), inputs=[InputSpec(path=str(corpus_input))], num_workers=1,
                     min_words=3, validation_fraction=0.0, exact_dedup=False, near_dedup=False), force=True)
    assert any("שורה חדשה שנוספה" in r["text"] for r in read_corpus(tmp_path / "out"))


def test_an_input_is_its_content_a_new_mtime_is_not_a_change_and_an_edit_is(tmp_path, corpus_input, caplog):
    """Data copied again (the same bytes, a new mtime) leaves a finished corpus finished, so the stages
    built on it stay valid; an edit, even one that keeps the size, is caught: the fingerprint holds each
    file's sha256 (its `_SUCCESS` keeps the hashes, reused while a file's size and mtime are unchanged)."""
    import os

    build(tmp_path / "out", [corpus_input])
    success = (tmp_path / "out" / "_SUCCESS").read_bytes()
    st = os.stat(corpus_input)
    os.utime(corpus_input, ns=(st.st_atime_ns, st.st_mtime_ns + 3_600_000_000_000))  # copied an hour later
    build(tmp_path / "out", [corpus_input])
    assert (tmp_path / "out" / "_SUCCESS").read_bytes() == success  # nothing rebuilt
    text = corpus_input.read_bytes()
    edited = text.replace("א".encode(), "ב".encode(), 1)
    assert edited != text and len(edited) == len(text)
    corpus_input.write_bytes(edited)
    with pytest.raises(ValueError, match="another config or other inputs"):
        build(tmp_path / "out", [corpus_input])


def test_jsonl_gz_shards_hold_what_parquet_shards_hold(tmp_path, corpus_input):
    from hebrew_lm.corpus.shards import read_texts

    build(tmp_path / "pq", [corpus_input], validation_fraction=0.1)
    build(tmp_path / "js", [corpus_input], validation_fraction=0.1, shard_format="jsonl.gz")
    manifest = json.loads((tmp_path / "js" / "manifest.json").read_text())
    assert all(s["file"].endswith(".jsonl.gz") for split in manifest["splits"].values() for s in split["shards"])
    for split in ("train", "validation"):
        assert read_corpus(tmp_path / "js", split) == read_corpus(tmp_path / "pq", split)
        assert list(read_texts(tmp_path / "js", split)) == list(read_texts(tmp_path / "pq", split))


def test_every_document_dropped_is_a_clear_error_pointing_at_the_rejects(tmp_path, corpus_input):
    with pytest.raises(ValueError, match=r"every document was dropped \(too_short: \d+\); see .*rejects.jsonl.gz"):
        build(tmp_path / "out", [corpus_input], min_words=100_000)
