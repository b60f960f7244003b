import json
import subprocess
import sys
from pathlib import Path

import pytest

from hebrew_lm.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_python_dash_m_and_help_teach_the_stages():
    out = subprocess.run([sys.executable, "-m", "hebrew_lm", "--help"], capture_output=True, text=True, check=True).stdout
    assert "corpus" in out and "hebrew-lm run configs/tiny.yaml" in out


def test_stage_help_lists_every_field_with_its_docstring(capsys):
    try:
        main(["corpus", "build", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "--near_dup_threshold" in out and "Jaccard similarity of word-shingle sets" in out
    assert "--normalize.strip_niqqud" in out and "vowel points" in out


def test_run_executes_the_preset_stages_with_dotted_overrides(tmp_path, hebrew_lines):
    (tmp_path / "in.txt").write_text("\n".join(hebrew_lines[:30]) + "\n", encoding="utf-8")
    config = tmp_path / "p.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\nstages: [corpus]\ncorpus:\n  inputs: [{tmp_path / 'in.txt'}]\n")
    assert main(["run", str(config), "--corpus.num_workers", "1", "--corpus.min_words", "12"]) == 0
    stats = json.loads((tmp_path / "run" / "corpus" / "stats.json").read_text())
    assert stats["documents_in"] == 30
    assert stats["dropped"]["too_short"]["documents"] == sum(1 for line in hebrew_lines[:30] if len(line.split()) < 12)


def test_bad_flag_value_is_rejected_by_the_parser(tmp_path, capsys):
    try:
        main(["corpus", "build", str(REPO / "configs/tiny.yaml"), "--min_words", "many"])
    except SystemExit as e:
        assert e.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_generated_config_reference_is_up_to_date():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_docs.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_chains_corpus_and_tokenizer(tmp_path, hebrew_lines):
    from transformers import AutoTokenizer

    (tmp_path / "in.txt").write_text("\n".join(hebrew_lines[:400]) + "\n", encoding="utf-8")
    config = tmp_path / "p.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\nstages: [corpus, tokenizer]\n"
                      f"corpus:\n  inputs: [{tmp_path / 'in.txt'}]\n  num_workers: 1\n")
    assert main(["run", str(config), "--tokenizer.vocab_size", "600", "--tokenizer.audit", "false"]) == 0
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "run" / "tokenizer"))
    assert len(tok) == 600
    stats = json.loads((tmp_path / "run" / "tokenizer" / "stats.json").read_text())
    corpus = json.loads((tmp_path / "run" / "corpus" / "stats.json").read_text())
    assert stats["sample_documents"] == corpus["splits"]["train"]["documents"]


def test_finetune_needs_no_preset_and_names_what_is_missing(tmp_path, capsys, caplog):
    try:
        main(["finetune", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "[CONFIG]" in out and "--learning_rates" in out and "95th percentile" in out
    assert main(["finetune", "--models", str(tmp_path)]) == 2
    assert "missing required key(s): output_dir" in caplog.text
    assert main(["finetune", "--models", str(tmp_path), "--output_dir", str(tmp_path / "o")]) == 2
    assert "is not a Hugging Face model folder" in caplog.text
    # A model folder that passes the model checks, so that the missing data is what fails.
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "tokenizer.json").write_text("{}")
    caplog.clear()
    assert main(["finetune", "--models", str(tmp_path / "m"), "--output_dir", str(tmp_path / "o"),
                 "--tasks", "nemo", "--data_dir", str(tmp_path / "data")]) == 2
    assert "not found; looked for" in caplog.text and "hebrew-lm data download nemo" in caplog.text


def test_plan_prints_the_cost_of_a_preset_without_running_anything(tmp_path, capsys):
    preset = (REPO / "configs" / "hallelubert-base.yaml").read_text()
    config = tmp_path / "base.yaml"
    config.write_text(preset.replace("run_dir: runs/hallelubert-base", f"run_dir: {tmp_path / 'run'}"))
    assert main(["plan", str(config)]) == 0
    out = capsys.readouterr().out
    assert "126,031,648 parameters" in out  # the paper's base model
    assert "419,430,400,000 tokens" in out  # 100k steps x 8,192 sequences x 512
    assert "H100 SXM" in out and "MFU" in out and "memory per device" in out
    assert not (tmp_path / "run").exists()
    assert main(["plan", str(REPO / "configs" / "tiny.yaml"), "--pretrain.max_steps", "600"]) == 0
    out = capsys.readouterr().out
    assert "1,462,336 parameters" in out and "600 -> 614,400 tokens" in out and "8 trials" in out


def test_run_from_until_and_force_choose_the_stages(tmp_path, hebrew_lines, caplog):
    (tmp_path / "in.txt").write_text("\n".join(hebrew_lines[:200]) + "\n", encoding="utf-8")
    config = tmp_path / "p.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\nstages: [corpus, tokenizer]\n"
                      f"corpus:\n  inputs: [{tmp_path / 'in.txt'}]\n  num_workers: 1\n"
                      f"tokenizer:\n  vocab_size: 500\n  audit: false\n")
    run = tmp_path / "run"
    assert main(["run", str(config), "--until", "corpus"]) == 0
    assert (run / "corpus" / "_SUCCESS").exists() and not (run / "tokenizer").exists()
    assert main(["run", str(config), "--from", "tokenizer"]) == 0
    assert (run / "tokenizer" / "_SUCCESS").exists()
    corpus_mark = (run / "corpus" / "_SUCCESS").stat().st_mtime_ns
    tokenizer_mark = (run / "tokenizer" / "_SUCCESS").stat().st_mtime_ns
    assert main(["run", str(config), "--force", "tokenizer"]) == 0  # the corpus is finished: skipped
    assert (run / "corpus" / "_SUCCESS").stat().st_mtime_ns == corpus_mark
    assert (run / "tokenizer" / "_SUCCESS").stat().st_mtime_ns != tokenizer_mark
    assert set(json.loads((run / "timings" / "timings.json").read_text())) == {"corpus", "tokenizer"}
    assert main(["run", str(config), "--from", "tokenizer", "--until", "corpus"]) == 2
    assert "--from tokenizer comes after --until corpus" in caplog.text


def test_plan_prints_hebatrons_exact_counts_and_the_engine_it_needs(capsys):
    assert main(["plan", str(REPO / "configs" / "hebatron.yaml")]) == 0
    out = capsys.readouterr().out
    assert "31,577,937,344 parameters in total, 3,580,073,408 active per token" in out
    assert "(2,875,430,336 without the input and output embeddings)" in out
    assert "128 routed experts top-6 + 1 shared" in out and "6 full_attention" in out
    assert "engine            expert parallelism (Megatron-Bridge" in out and "H200" in out
    # the same curriculum handed to Megatron-Bridge: one run per phase, with its iterations and blend
    assert "run 1 formal     24,000 iterations x 512 x 8,192 = 100,663,296,000 tokens; blend: Hebrew 75%, anchor 25%" in out
    assert "run 3 hard       12,000 iterations" in out
    assert main(["plan", str(REPO / "configs" / "tiny-decoder.yaml")]) == 0
    out = capsys.readouterr().out
    assert "decoder-tiny preset" in out and "engine            one process or DDP" in out


@pytest.mark.parametrize("family", ["llama", "qwen3_moe", "gemma3_text", "mixtral"])
def test_plan_reads_any_causal_familys_config_for_a_cpt_base(tmp_path, capsys, family):
    """`plan` once read NemotronH's field names only: a Llama base (SmolLM2) ended in AttributeError."""
    from transformers import AutoConfig

    shape = {"llama": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                           intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True, head_dim=64),
             "qwen3_moe": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                               moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2, vocab_size=1000),
             "gemma3_text": dict(hidden_size=64, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=1,
                                 intermediate_size=128, vocab_size=1000, head_dim=16),
             "mixtral": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             intermediate_size=128, vocab_size=1000, num_local_experts=4)}[family]
    AutoConfig.for_model(family, **shape).save_pretrained(tmp_path / "base")
    (tmp_path / "p.yaml").write_text(f"run_dir: {tmp_path / 'run'}\nstages: [cpt]\ncpt:\n  init_from: {tmp_path / 'base'}\n"
                                     f"  tokenizer_dir: {tmp_path / 'base'}\n  max_steps: 10\n  warmup_steps: 1\n")
    assert main(["plan", str(tmp_path / "p.yaml")]) == 0
    out = capsys.readouterr().out
    if family == "llama":  # SmolLM2-135M's shape: its published parameter count
        assert "134,515,008 parameters in total, 134,515,008 active per token" in out
        assert "layers            30 (30 attention), hidden 576, vocab 49,152" in out
    if family == "qwen3_moe":  # 8 experts top-2: a quarter of the routed weights are active
        assert "252,288 parameters in total, 178,560 active per token" in out and "8 routed experts top-2" in out
    if family == "gemma3_text":
        assert "5 sliding_attention, 1 full_attention" in out
    assert "phase 1 all" in out and "engine            one process or DDP" in out and not (tmp_path / "run").exists()


def test_plan_of_a_preset_whose_bases_an_earlier_stage_writes(tmp_path, capsys):
    """A base imported by the preset itself does not exist before the run: the plan says so and goes on (it
    once ended in transformers' 'Repo id must be in the form' error); instances plan into their own folders."""
    run = tmp_path / "run"
    (tmp_path / "p.yaml").write_text(f"""run_dir: {run}
stages: [base, continued, chat]
base: {{stage: import_gguf, inputs: [model.gguf]}}
continued: {{stage: cpt, init_from: {run / 'base'}, tokenizer_dir: {run / 'base'}, max_steps: 10, warmup_steps: 1}}
chat: {{stage: sft, init_from: {run / 'continued' / 'model'}, tokenizer_dir: {run / 'continued' / 'model'}, max_steps: 4,
        warmup_steps: 1}}
""")
    assert main(["plan", str(tmp_path / "p.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"GGUF import: model.gguf dequantized to a Hugging Face folder -> {run / 'base'}" in out
    assert f"init_from {run / 'base'} does not exist yet" in out and "phase 1 all" in out
    assert f"-> {run / 'chat'}/model" in out and not run.exists()


def test_every_registered_stage_has_a_verb_a_runner_a_plan_entry_and_a_run_name(capsys):
    """The stage registry is the one place a stage is declared: the CLI, `run` and `plan` find it there."""
    import importlib

    from hebrew_lm.stages import STAGES, resolve

    for stage in STAGES.values():
        with pytest.raises(SystemExit) as exit_:
            main([*stage.command.split(), "--help"])
        assert exit_.value.code == 0 and f"hebrew-lm {stage.command}" in capsys.readouterr().out
        assert callable(importlib.import_module(stage.runner).run)
        assert callable(resolve(stage.plan)) and (not stage.report or callable(resolve(stage.report)))
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert all(f"--{name}.output_dir" in out for name in STAGES)


TOY_STAGE = """
from dataclasses import dataclass
from pathlib import Path

from hebrew_lm.config import bounded
from hebrew_lm.report.page import Section
from hebrew_lm.runs import claim_output_dir, mark_success


@dataclass
class ToyConfig:
    \"\"\"`hebrew-lm toy`: a stage that only counts.\"\"\"

    RUN_DIR_DEFAULTS = {"output_dir": "toy"}

    output_dir: str
    \"\"\"Where the count goes.\"\"\"
    count: int = bounded("[1, 100]", 3)
    \"\"\"How far to count.\"\"\"


def run(config, force=False):
    out = claim_output_dir(Path(config.output_dir), "toy")
    (out / "count.txt").write_text(" ".join(map(str, range(1, config.count + 1))))
    mark_success(out, "", stage="toy")
    return out


def plan(preset, preset_path, overrides, cpu_flops):
    return ["", "Toy: counts to a few, in no time"]


def section(folder):
    return [Section("toy", "Toy", paragraphs=[f"Counted: {(folder / 'count.txt').read_text()}"])]
"""


def test_a_stage_is_its_own_module_plus_one_registry_entry(tmp_path, monkeypatch, capsys):
    """A toy stage in a module of its own, registered with one `Stage`: `--help`, `run`, `plan` and the report
    all pick it up, with nothing else edited."""
    from hebrew_lm.stages import STAGES, Stage

    (tmp_path / "toy_stage.py").write_text(TOY_STAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    toy = __import__("toy_stage")
    monkeypatch.setitem(STAGES, "toy", Stage("toy", toy.ToyConfig, "toy", "toy_stage", "count to a few",
                                            "A toy stage.", plan="toy_stage:plan", report="toy_stage:section"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "toy                  count to a few" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["toy", "--help"])
    assert "--count N" in capsys.readouterr().out
    preset = tmp_path / "p.yaml"
    preset.write_text(f"run_dir: {tmp_path / 'run'}\nstages: [toy, report]\ntoy:\n  count: 4\n")
    assert main(["plan", str(preset)]) == 0
    assert "Toy: counts to a few" in capsys.readouterr().out
    assert main(["run", str(preset)]) == 0
    assert (tmp_path / "run" / "toy" / "count.txt").read_text() == "1 2 3 4"
    assert "Counted: 1 2 3 4" in (tmp_path / "run" / "report" / "report.md").read_text()
    assert main(["toy", str(preset), "--count", "200"]) == 2  # its declared range, checked like any stage's
