"""`--force` and what `run` records never cost a user's files: the finished build stays until its
replacement is written (and comes back when the new run fails), a bad GGUF is refused before the good
import is touched, and `run` keeps its timings in a folder of its own."""

from __future__ import annotations

import json
import logging
from pathlib import Path


from hebrew_lm.cli import main
from hebrew_lm.runs import OWNER, PREVIOUS, SUCCESS

from helpers import write_jsonl
from test_hostile_inputs import tree_hash


def corpus_preset(root: Path, texts: list[str], inputs: list[str] | None = None) -> Path:
    write_jsonl(root / "in.jsonl", texts)
    items = ", ".join(inputs or [str(root / "in.jsonl")])
    (root / "p.yaml").write_text(f"run_dir: {root / 'run'}\nstages: [corpus]\n"
                                 f"corpus:\n  inputs: [{items}]\n  num_workers: 1\n  near_dedup: false\n")
    return root / "p.yaml"


def test_a_forced_rebuild_that_fails_puts_the_finished_build_back(tmp_path, hebrew_lines, caplog):
    preset = corpus_preset(tmp_path, hebrew_lines[:80])
    assert main(["run", str(preset)]) == 0
    out = tmp_path / "run" / "corpus"
    before = tree_hash(out)
    # A corrupt Parquet file is found only while the build reads its inputs: after --force has begun.
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    bad = corpus_preset(tmp_path, hebrew_lines[:80], [str(tmp_path / "in.jsonl"), str(tmp_path / "bad.parquet")])
    with caplog.at_level(logging.ERROR, logger="hebrew_lm"):
        assert main(["run", str(bad), "--force", "corpus"]) == 2
    assert "not a readable Parquet file" in caplog.text and "previous finished build is back" in caplog.text
    assert tree_hash(out) == before and not (out / PREVIOUS).exists()
    # A forced rebuild that succeeds replaces the build and keeps nothing of the old one.
    good = corpus_preset(tmp_path, hebrew_lines[:60])
    assert main(["run", str(good), "--force", "corpus"]) == 0
    assert tree_hash(out) != before and not (out / PREVIOUS).exists() and (out / SUCCESS).is_file()


def test_an_interrupted_forced_rebuild_keeps_the_finished_build_until_a_rerun_finishes(tmp_path, hebrew_lines,
                                                                                       monkeypatch):
    from hebrew_lm.corpus import build as corpus_build

    preset = corpus_preset(tmp_path, hebrew_lines[:80])
    assert main(["run", str(preset)]) == 0
    out = tmp_path / "run" / "corpus"
    manifest = (out / "manifest.json").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus_build, "_write_shards", interrupted)
    assert main(["run", str(preset), "--force", "corpus"]) == 130
    assert (out / PREVIOUS / "manifest.json").read_bytes() == manifest and not (out / SUCCESS).exists()
    monkeypatch.undo()
    assert main(["run", str(preset)]) == 0  # the rerun finishes the new build, then drops the old one
    assert (out / SUCCESS).is_file() and not (out / PREVIOUS).exists()


def finished_import(folder: Path) -> str:
    """A folder that a finished `decoder import-gguf` left (the model is stand-in bytes: nothing loads it)."""
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_text("the good import\n")
    (folder / OWNER).write_text(json.dumps({"stage": "import_gguf", "tool": "hebrew-lm"}))
    (folder / SUCCESS).write_text(json.dumps({"stage": "import_gguf", "fingerprint": "an earlier file"}))
    return tree_hash(folder)


def test_import_gguf_force_reads_the_file_before_it_touches_the_good_import(tmp_path, caplog):
    import gguf

    out = tmp_path / "base"
    before = finished_import(out)
    (tmp_path / "text.gguf").write_text("not a model\n")
    writer = gguf.GGUFWriter(tmp_path / "whole.gguf", "no-such-architecture")
    writer.add_tensor("w", __import__("numpy").ones((64, 64), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = (tmp_path / "whole.gguf").read_bytes()
    (tmp_path / "truncated.gguf").write_bytes(data[:len(data) - 1000])
    (tmp_path / "model.whl").write_bytes(b"PK not a zip")
    cases = {"truncated.gguf": "truncated.gguf: not a complete GGUF file",
             "text.gguf": "text.gguf: not a complete GGUF file",
             "missing.gguf": "missing.gguf is not a file",
             "model.whl": "model.whl: not a readable .whl/.zip archive",
             # read whole, then refused by transformers: the import set aside comes back
             "whole.gguf": "the previous finished build is back",
             "base/model.safetensors": "inputs .*base/model.safetensors lies inside output_dir"}
    for name, message in cases.items():
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="hebrew_lm"):
            code = main(["decoder", "import-gguf", str(tmp_path / name), "--output_dir", str(out), "--force"])
        assert code != 0, name
        assert any(__import__("re").search(message, r.getMessage()) for r in caplog.records), (name, caplog.text)
        assert tree_hash(out) == before, f"{name} changed the finished import"


def test_run_records_its_timings_in_a_folder_it_owns_never_in_a_users_file(tmp_path, hebrew_lines, monkeypatch,
                                                                          caplog):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", hebrew_lines[:40])
    (tmp_path / "p.yaml").write_text("run_dir: .\nstages: [corpus]\ncorpus:\n  inputs: [in.jsonl]\n  num_workers: 1\n"
                                     "  near_dedup: false\n")
    (tmp_path / "timings.json").write_text('["the user\'s own file"]\n')
    assert main(["run", "p.yaml"]) == 0
    assert (tmp_path / "timings.json").read_text() == '["the user\'s own file"]\n'
    timings = tmp_path / "timings" / "timings.json"
    assert list(json.loads(timings.read_text())) == ["corpus"]
    timings.write_text("[1, 2]\n")  # our own file, hand-edited into a list: started over with a warning
    with caplog.at_level(logging.WARNING, logger="hebrew_lm"):
        assert main(["run", "p.yaml", "--force", "corpus"]) == 0
    assert "was not a mapping" in caplog.text and list(json.loads(timings.read_text())) == ["corpus"]
    # a `timings` folder that run did not make is never written into
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "timings").mkdir()
    (tmp_path / "elsewhere" / "timings" / "notes.txt").write_text("mine\n")
    (tmp_path / "q.yaml").write_text("run_dir: elsewhere\nstages: [corpus]\ncorpus:\n  inputs: [in.jsonl]\n"
                                     "  num_workers: 1\n")
    assert main(["run", "q.yaml"]) == 2 and not (tmp_path / "elsewhere" / "corpus").exists()


def test_a_stage_without_an_output_folder_is_refused_before_it_writes(tmp_path, monkeypatch, caplog):
    """An empty output_dir would be the working directory, which no stage owns."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.gguf").write_text("not read\n")
    with caplog.at_level(logging.ERROR, logger="hebrew_lm"):
        assert main(["decoder", "import-gguf", "model.gguf"]) != 0
    assert "import_gguf: give output_dir" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]
