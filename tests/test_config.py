import dataclasses
from pathlib import Path

import pytest

from hebrew_lm.config import (
    STAGE_CONFIGS,
    CorpusConfig,
    InputSpec,
    NormalizeConfig,
    field_docs,
    flat_fields,
    load_preset,
    stage_config,
)

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "configs").glob("*.yaml"))


def test_presets_exist():
    names = {p.name for p in PRESETS}
    assert {"tiny.yaml", "hallelubert-base.yaml", "hallelubert-large.yaml"} <= names


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_parses_into_every_stage_it_lists(preset):
    data = load_preset(preset)
    assert data["stages"], f"{preset.name} lists no stages"
    for stage in data["stages"]:
        config = stage_config(data, stage, source=str(preset))
        assert isinstance(config, STAGE_CONFIGS[stage])
        assert config.output_dir == str(Path(data["run_dir"]) / stage)


@pytest.mark.parametrize("cls", [*STAGE_CONFIGS.values(), NormalizeConfig, InputSpec], ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls):
    docs = field_docs(cls)
    undocumented = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert not undocumented


def test_flags_override_the_file_and_nested_fields_resolve():
    preset = load_preset(REPO / "configs/tiny.yaml")
    config = stage_config(preset, "corpus", {"min_words": "3", "normalize.strip_niqqud": "false",
                                             "inputs": ["a.txt", "b.jsonl"]})
    assert config.min_words == 3
    assert config.normalize.strip_niqqud is False
    assert config.normalize.nfc is True
    assert [i.path for i in config.inputs] == ["a.txt", "b.jsonl"]
    assert config.inputs[0].name == "a.txt"


def test_input_mappings_in_yaml(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "run_dir: r\nstages: [corpus]\ncorpus:\n  inputs:\n    - path: x.jsonl\n      text_field: body\n      name: web\n"
    )
    config = stage_config(load_preset(tmp_path / "p.yaml"), "corpus")
    assert config.inputs[0] == InputSpec(path="x.jsonl", text_field="body", name="web")


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("run_dir: r\ncorpus:\n  min_word: 3\n", "did you mean 'min_words'"),
        ("run_dir: r\ncorpus:\n  min_words: many\n", "expected an integer"),
        ("run_dir: r\ncorpus:\n  validation_fraction: 1.5\n", "validation_fraction must lie in"),
        ("run_dir: r\ncorpus:\n  shard_format: csv\n", "is not one of"),
        ("run_dir: r\ncorpus:\n  inputs:\n    - path: a\n      format: docx\n", "is not one of"),
        ("run_dir: r\nstages: [corpus, bake]\n", "stages"),
        ("run_dir: r\ncorpsu: {}\n", "unknown top-level key"),
        ("corpus: {}\n", "missing required key(s): output_dir"),
        ("run_dir: r\ncorpus: [1\n", "line"),
    ],
)
def test_config_mistakes_are_clear_errors(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError) as err:
        stage_config(load_preset(path), "corpus", source=str(path))
    assert message in str(err.value)
    assert "bad.yaml" in str(err.value)


def test_flat_fields_cover_nested_normalize():
    names = [name for name, _, _ in flat_fields(CorpusConfig)]
    assert "normalize.strip_niqqud" in names and "min_words" in names
