import dataclasses
import re
from pathlib import Path

import pytest

from hebrew_lm.config import field_docs, flat_fields
from hebrew_lm.finetune.config import TaskSpec
from hebrew_lm.corpus.config import CorpusConfig, InputSpec
from hebrew_lm.presets import load_preset, stage_config
from hebrew_lm.text.normalize import NormalizeConfig
from hebrew_lm.stages import STAGE_CONFIGS, stage_of

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
        assert isinstance(config, stage_of(data, stage).config)  # an instance (hebrew_corpus) runs its kind's
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


def _numeric_fields(cls):
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if tp in (int, float) or typing.get_args(tp) in ((int,), (float,)):
            yield f, tp


def _valid(cls):
    """A preset's worth of required fields: the tiny preset's resolved section, or the bare minimum."""
    from hebrew_lm.finetune.config import TaskSpec

    if cls is TaskSpec:
        return {"name": "x"}
    stage = next(s for s, c in STAGE_CONFIGS.items() if c is cls)
    return dataclasses.asdict(stage_config(load_preset(REPO / "configs" / "tiny.yaml"), stage))


@pytest.mark.parametrize("cls", [*STAGE_CONFIGS.values(), TaskSpec],
                         ids=lambda c: c.__name__)
def test_every_numeric_field_declares_a_range_that_load_time_enforces(cls):
    from hebrew_lm.config import field_range, from_dict

    fields = list(_numeric_fields(cls))
    for f, tp in fields:
        interval = field_range(f)
        assert interval is not None, f"{cls.__name__}.{f.name} has no declared range"
        # Just outside the range, on whichever side is finite: refused, naming field, value and range.
        bad = interval.low - 1 if interval.low != float("-inf") else interval.high + 1
        if interval.low_open and interval.low != float("-inf"):
            bad = interval.low
        is_list = typing_is_list(tp)
        value = [bad] if is_list else (int(bad) if tp is int else bad)
        data = {k: v for k, v in _valid(cls).items() if not isinstance(v, (list, dict)) or k in ("models",)}
        data[f.name] = value
        with pytest.raises(ValueError, match=rf"\.{f.name} must lie in {re.escape(interval.text)}, got"):
            from_dict(cls, data, "test")


def typing_is_list(tp) -> bool:
    import typing

    return typing.get_origin(tp) is list


def test_help_shows_each_fields_range(capsys):
    from hebrew_lm.cli import main

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Dropout on hidden states and attention probabilities. Range: [0, 1)." in text
    assert "AdamW beta2 (RoBERTa: 0.98). Range: [0, 1)." in text


def test_a_key_given_twice_in_a_preset_is_an_error_naming_key_and_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("run_dir: runs/x\npretrain:\n  dropout: 0.1\n  seed: 1\n  dropout: 0.2\n")
    with pytest.raises(ValueError, match=r"p.yaml, line 5: .*duplicate key 'dropout' \(first at line 3\)"):
        load_preset(path)


def test_threads_below_zero_is_one_line_error_not_a_traceback(tmp_path, caplog):
    from hebrew_lm.cli import main

    assert main(["finetune", "--models", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--threads", "-2"]) == 2
    assert "finetune.threads must lie in [0, 1024], got -2" in caplog.text


@pytest.mark.parametrize("name", ["..", ".", "/", "..."])
def test_model_and_task_names_that_would_leave_the_output_folder_are_refused(name):
    from hebrew_lm.finetune.config import FinetuneConfig, TaskSpec

    with pytest.raises(ValueError, match="cannot name a folder"):
        TaskSpec(name)
    with pytest.raises(ValueError, match="cannot name a folder"):
        FinetuneConfig(output_dir="o", models=["m"], model_names=[name])
    from hebrew_lm.finetune.stage import slug

    assert slug("a/../b") == "a_.._b" and slug("../..") == ".._.." and slug("x/y") == "x_y"  # one component each


def test_field_docs_that_list_names_list_the_codes_names():
    """The lists a field's help repeats come from the code (f-string docstrings) or are checked against it."""
    from hebrew_lm.cpt.config import PhaseSpec
    from hebrew_lm.cpt.difficulty import ALL_SCORERS, MODEL_SCORERS
    from hebrew_lm.evaluate.config import EvalConfig
    from hebrew_lm.evaluate.public import PUBLIC
    from hebrew_lm.evaluate.tasks import EMBEDDED
    from hebrew_lm.sft.config import SourceWeight
    from hebrew_lm.sft.data import DEMO_SOURCES

    assert all(name in field_docs(PhaseSpec)["difficulty"] for name in (*ALL_SCORERS, *MODEL_SCORERS))
    assert all(name in field_docs(SourceWeight)["name"] for name in DEMO_SOURCES)
    tasks_doc = field_docs(EvalConfig)["tasks"]
    assert all(name in tasks_doc for name in EMBEDDED if name != "he_longdoc_blind")
    assert all(name in tasks_doc or name.startswith("psychometric_he_") for name in PUBLIC)
    assert "psychometric_he_*" in tasks_doc


def test_a_section_reuses_another_with_yamls_merge_key_and_duplicates_are_still_refused(tmp_path):
    from hebrew_lm.presets import load_preset, stage_config

    (tmp_path / "p.yaml").write_text("run_dir: r\nstages: [cpt, megatron]\ncpt: &cpt\n  init_from: base\n"
                                     "  max_steps: 30\n  warmup_steps: 3\nmegatron:\n  <<: *cpt\n  max_steps: 60\n")
    preset = load_preset(tmp_path / "p.yaml")
    config = stage_config(preset, "megatron")
    assert (config.init_from, config.max_steps, config.output_dir) == ("base", 60, "r/megatron")
    (tmp_path / "q.yaml").write_text("run_dir: r\ncpt:\n  max_steps: 3\n  max_steps: 4\n")
    with pytest.raises(ValueError, match="duplicate key 'max_steps'"):
        load_preset(tmp_path / "q.yaml")
