"""Run folders: the ownership rule, atomic writes that never follow a planted symlink, the downloader's
folder rules, and a torn metrics line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from hebrew_lm.runs import (OWNER, atomic_write_bytes, check_finished, claim_output_dir, clear_owned_dir,
                            mark_success, stage_owner)


def test_a_planted_symlink_at_any_temporary_name_is_never_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    # The old fixed temporary names, planted beforehand as links to a file outside the folder.
    for name in (".SOURCE.txt.tmp", "SOURCE.txt.tmp"):
        (out / name).symlink_to(outside)
    atomic_write_bytes(out / "SOURCE.txt", b"new")
    assert outside.read_text() == "precious" and (out / "SOURCE.txt").read_bytes() == b"new"
    # A symlink at the target itself is replaced, not followed.
    (out / "link.txt").symlink_to(outside)
    atomic_write_bytes(out / "link.txt", b"mine")
    assert outside.read_text() == "precious" and not (out / "link.txt").is_symlink()
    assert {p.name for p in out.iterdir()} == {".SOURCE.txt.tmp", "SOURCE.txt.tmp", "SOURCE.txt", "link.txt"}


def test_ownership_marker_claim_clear_and_legacy_success(tmp_path, caplog):
    out = claim_output_dir(tmp_path / "new", "corpus")
    assert stage_owner(out) == "corpus" and json.loads((out / OWNER).read_text())["stage"] == "corpus"
    (out / "a").mkdir()
    (out / "a" / "b.txt").write_text("x")
    (out / "link").symlink_to(tmp_path, target_is_directory=True)
    with caplog.at_level(logging.INFO, logger="hebrew_lm"):
        clear_owned_dir(out, "corpus", "testing")
    assert "removing the 2 entries" in caplog.text  # it says so before deleting
    assert [p.name for p in out.iterdir()] == [OWNER] and tmp_path.is_dir()  # the link's target survives
    with pytest.raises(ValueError, match="belongs to the corpus stage"):
        clear_owned_dir(out, "tokenizer", "testing")
    # A folder finished before markers existed proves its stage by its _SUCCESS record.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "x.bin").write_bytes(b"1")
    mark_success(legacy, "fp", stage="tokenizer")
    assert stage_owner(legacy) == "tokenizer"
    assert check_finished(legacy, "fp", "tokenizer", force=False) is True
    assert check_finished(legacy, "other", "tokenizer", force=True) is False and not (legacy / "x.bin").exists()
    # A _SUCCESS that is not ours (or names no stage) proves nothing.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "_SUCCESS").write_text("")
    with pytest.raises(ValueError, match="not empty and was not made by hebrew-lm's corpus stage"):
        check_finished(foreign, "fp", "corpus", force=True)
    assert (foreign / "_SUCCESS").exists()


def test_download_never_follows_a_symlink_out_of_its_folder(tmp_path, monkeypatch):
    import hashlib

    from hebrew_lm import download as dl

    mirror = tmp_path / "mirror" / "OnlpLab" / "HebrewResources" / dl.SOURCES["bmc"][1] / "BMCNER" / "splits"
    mirror.mkdir(parents=True)
    (mirror / "a.bmes").write_text("דוד S-PER\n", encoding="utf-8")
    monkeypatch.setenv("HEBREW_LM_DATA_MIRROR", (tmp_path / "mirror").as_uri())
    monkeypatch.setitem(dl.FILES, "bmc", [("splits/a.bmes", hashlib.sha256((mirror / "a.bmes").read_bytes()).hexdigest())])
    dest = dl.download("bmc", tmp_path / "data")
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (dest / "SOURCE.txt").unlink()
    (dest / "SOURCE.txt").symlink_to(outside)
    with pytest.raises(ValueError, match="SOURCE.txt is a symbolic link"):
        dl.download("bmc", tmp_path / "data")
    assert outside.read_text() == "precious"
    (tmp_path / "elsewhere").mkdir()
    (dest / "splits" / "a.bmes").unlink()
    (dest / "splits").rmdir()
    (dest / "splits").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ValueError, match="splits is a symbolic link"):
        dl.download("bmc", tmp_path / "data")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_torn_last_metrics_line_is_dropped_with_a_warning_and_a_bad_middle_line_named(tmp_path, caplog):
    from hebrew_lm.engine.metrics import metrics_writer as _metrics_writer

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    with caplog.at_level(logging.WARNING, logger="hebrew_lm"):
        _metrics_writer(path, up_to_step=2).close()
    assert f"{path}:3: torn last line dropped" in caplog.text
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": oops}\n{"step": 3, "loss": 1.0}\n')
    with pytest.raises(ValueError, match=rf"{path}:2: not a metrics record"):
        _metrics_writer(path, up_to_step=3)


def test_output_dir_that_is_a_file_or_below_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        claim_output_dir(tmp_path / "f", "report")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        claim_output_dir(tmp_path / "f" / "sub", "report")
    assert Path(tmp_path / "f").read_text() == "x"
