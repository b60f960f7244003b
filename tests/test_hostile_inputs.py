"""One list of hostile output folders, walked through every stage's output option: each is refused with
a one-line error (exit 2) and nothing outside the output folder changes (the whole tree is hashed before
and after). The ownership rule behind it is `hebrew_lm.runs.claim_output_dir`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from hebrew_lm.cli import main
from hebrew_lm.runs import claim_output_dir

from helpers import corpus_and_tokenizer

HOSTILE = ["unowned folder", "symlink", "dot-dot path", "absolute path", "file"]


def tree_hash(root: Path) -> str:
    """Every path under root with its kind and content (links by target, never followed)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            h.update(str(path.relative_to(root)).encode())
            if path.is_symlink():
                h.update(b"link:" + os.readlink(path).encode())
            elif path.is_file():
                h.update(b"file:" + path.read_bytes())
            else:
                h.update(b"dir")
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory, hebrew_docs):
    """A finished corpus and tokenizer (so later stages reach their output check), a preset, and a user's
    folder that looks like every stage's output: manifest.json, tokenizer files, model weights, code."""
    root = tmp_path_factory.mktemp("world")
    (root / "made").mkdir()
    corpus_and_tokenizer(root / "made", hebrew_docs[:60], vocab_size=400)
    claim_output_dir(root / "made" / "cache", "token cache", "cache_dir")  # pretrain's own cache, made beforehand
    model = root / "made" / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").write_text("{}")
    victim = root / "victim"
    for name in ("manifest.json", "tokenizer.json", "normalization.json", "model.safetensors", "README.md",
                 "_SUCCESS", "src/code.py", "nemo/notes.txt", "checkpoints/keep.txt", "trials/keep.txt"):
        (victim / name).parent.mkdir(parents=True, exist_ok=True)
        (victim / name).write_text(f"the user's {name}\n")
    (root / "sub").mkdir()
    (root / "link").symlink_to(victim, target_is_directory=True)
    (root / "a-file.txt").write_text("not a folder\n")
    (root / "preset.yaml").write_text("run_dir: made\n")
    return root


def target(world: Path, kind: str) -> str:
    return {"unowned folder": "victim", "symlink": "link", "dot-dot path": "sub/../victim",
            "absolute path": str(world / "victim"), "file": "a-file.txt"}[kind]


def commands(out: str) -> dict[str, list[str]]:
    made = "made"
    return {
        "corpus build": ["corpus", "build", "preset.yaml", "--inputs", f"{made}/in.jsonl", "--output_dir", out],
        "corpus build --force": ["corpus", "build", "preset.yaml", "--inputs", f"{made}/in.jsonl", "--output_dir",
                                 out, "--force"],
        "tokenizer train": ["tokenizer", "train", "preset.yaml", "--corpus_dir", f"{made}/corpus", "--output_dir", out,
                            "--vocab_size", "300", "--audit", "false"],
        "tokenizer train --force": ["tokenizer", "train", "preset.yaml", "--corpus_dir", f"{made}/corpus",
                                    "--output_dir", out, "--vocab_size", "300", "--audit", "false", "--force"],
        "tokenizer audit": ["tokenizer", "audit", "--tokenizers", f"{made}/tok", "--text", f"{made}/corpus",
                            "--morph", "--output_dir", out],
        "pretrain output_dir": ["pretrain", "preset.yaml", "--corpus_dir", f"{made}/corpus", "--tokenizer_dir",
                                f"{made}/tok", "--output_dir", out, "--model", "tiny", "--max_seq_len", "32"],
        "pretrain --force": ["pretrain", "preset.yaml", "--corpus_dir", f"{made}/corpus", "--tokenizer_dir",
                             f"{made}/tok", "--output_dir", out, "--model", "tiny", "--max_seq_len", "32", "--force"],
        "pretrain cache_dir": ["pretrain", "preset.yaml", "--corpus_dir", f"{made}/corpus", "--tokenizer_dir",
                               f"{made}/tok", "--output_dir", f"{made}/pt-fresh", "--cache_dir", out, "--model", "tiny",
                               "--max_seq_len", "32"],
        "decoder pretrain": ["decoder", "pretrain", "preset.yaml", "--corpus_dir", f"{made}/corpus", "--tokenizer_dir",
                             f"{made}/tok", "--output_dir", out, "--max_seq_len", "32", "--max_steps", "2",
                             "--warmup_steps", "1", "--global_batch_size", "2", "--micro_batch_size", "2"],
        "finetune": ["finetune", "--models", f"{made}/model", "--tasks", "sentiment-demo", "--output_dir", out],
        "report": ["report", "preset.yaml", "--output_dir", out],
        "data download": ["data", "download", "nemo", "--output_dir", out],
    }


@pytest.mark.parametrize("kind", HOSTILE)
def test_no_stage_writes_or_deletes_outside_its_own_folder(world, kind, monkeypatch, caplog):
    monkeypatch.chdir(world)
    monkeypatch.setenv("HEBREW_LM_DATA_MIRROR", (world / "no-such-mirror").as_uri())  # never the internet
    out = target(world, kind)
    for name, argv in commands(out).items():
        before = tree_hash(world)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="hebrew_lm"):
            code = main(["-q", *argv])
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert code == 2, f"{name} with {kind} {out}: exit {code}, {errors}"
        # The one-line error is the ownership rule's, naming the folder, not a later failure.
        assert errors and any(("output_dir" in e or "cache_dir" in e) for e in errors), (name, errors)
        assert tree_hash(world) == before, f"{name} with {kind} {out} changed files outside its folder"


def test_a_stage_refuses_another_stages_folder_even_with_force(world, monkeypatch, caplog):
    monkeypatch.chdir(world)
    # The tokenizer's folder given as the corpus output: refused even with --force, nothing deleted.
    before = tree_hash(world / "made" / "tok")
    assert main(["-q", "corpus", "build", "preset.yaml", "--inputs", "made/in.jsonl", "--output_dir", "made/tok",
                 "--force"]) == 2
    assert "belongs to the tokenizer stage" in caplog.text
    assert tree_hash(world / "made" / "tok") == before
    # The marker names the stage that made the folder.
    marker = json.loads((world / "made" / "corpus" / ".hebrew-lm-stage").read_text())
    assert marker["stage"] == "corpus"


def _input_cases() -> list[tuple[str, str, dict]]:
    """(stage, field, section) for every input field of every registered stage (nested specs included),
    the field pointing inside the stage's own output folder: a new stage or field is covered unasked."""
    import dataclasses
    import typing

    from hebrew_lm.config import is_input_field
    from hebrew_lm.stages import STAGES

    inside = "made/out/model"
    cases = []
    for name, stage in STAGES.items():
        hints = typing.get_type_hints(stage.config)
        for f in dataclasses.fields(stage.config):
            item = typing.get_args(hints[f.name])[0] if typing.get_origin(hints[f.name]) is list else hints[f.name]
            if dataclasses.is_dataclass(item):  # a corpus input's path, a fine-tuning task's files
                for sub in dataclasses.fields(item):
                    if is_input_field(sub.name):
                        cases.append((name, f"{f.name}.{sub.name}", {f.name: [{"name": "x", sub.name: inside}]}))
            elif is_input_field(f.name) and typing.get_origin(hints[f.name]) is dict:  # the report's `folders`
                cases.append((name, f"{f.name}.x", {f.name: {"x": inside}}))
            elif is_input_field(f.name):
                cases.append((name, f.name, {f.name: [inside] if item is str and hints[f.name] is not str else inside}))
    return cases


@pytest.mark.parametrize("stage, field, section", _input_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_force_never_clears_a_folder_that_holds_one_of_the_stages_inputs(world, monkeypatch, stage, field, section):
    """`cpt --init_from runs/x/model --output_dir runs/x --force` once deleted the model it was to read."""
    from hebrew_lm.presets import stage_config
    from hebrew_lm.runs import OWNER, SUCCESS
    from hebrew_lm.stages import STAGES

    monkeypatch.chdir(world)
    out = world / "made" / "out"
    shutil.rmtree(out, ignore_errors=True)
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.safetensors").write_text("the only copy of a trained model\n")
    for name in (OWNER, SUCCESS):  # a folder this stage finished: --force may clear it
        (out / name).write_text(json.dumps({"stage": stage, "fingerprint": "an earlier run"}))
    before = tree_hash(out)
    config = stage_config({"run_dir": "made", "kinds": {}}, stage, {**section, "output_dir": "made/out"}, source="test")
    with pytest.raises(ValueError, match=rf"{stage}: {field} made/out/model lies inside output_dir made/out"):
        STAGES[stage].run(config, force=True)
    assert tree_hash(out) == before
