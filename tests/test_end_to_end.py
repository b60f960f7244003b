"""The main job end to end: the tiny preset, made smaller still, from raw embedded text to the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hebrew_lm.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_preset_end_to_end_report_has_every_section_with_real_numbers(tmp_path):
    preset = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text(encoding="utf-8"))
    preset["run_dir"] = str(tmp_path / "tiny")  # the model row is named after the run folder
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(preset, allow_unicode=True), encoding="utf-8")
    smaller = ["--tokenizer.audit_baselines", "false", "--tokenizer.audit_max_docs", "50",
               "--pretrain.max_steps", "20", "--pretrain.warmup_steps", "2", "--pretrain.eval_every", "10",
               "--pretrain.checkpoint_every", "10", "--pretrain.eval_batches", "2",
               "--finetune.learning_rates", "1e-3", "--finetune.seeds", "1", "--finetune.max_epochs", "1"]
    assert main(["run", str(config), *smaller]) == 0

    run = tmp_path / "tiny"
    timings = json.loads((run / "timings.json").read_text(encoding="utf-8"))
    assert list(timings) == ["corpus", "tokenizer", "pretrain", "finetune", "report"]
    md = (run / "report" / "report.md").read_text(encoding="utf-8")
    assert "has not run" not in md
    assert re.search(r"Corpus: [\d,]+ of [\d,]+ documents kept", md)
    assert re.search(r"\| hebrew-lm byte-level BPE \(char-aligned\) \| 8,000 \| \d\.\d{3} \|", md)
    assert re.search(r"20 steps, [\d,]+ tokens seen", md)
    assert re.search(r"\| tiny \| \d+\.\d\d ± 0\.00 \| \d+\.\d\d ± 0\.00 \| \d+\.\d\d \|", md)
    assert re.search(r"\| tiny \(random init\) \| \d+\.\d\d ± 0\.00 \| \d+\.\d\d ± 0\.00 \| \d+\.\d\d \|", md)
    assert re.search(r"\| tiny \| htb-ner \| \d+ \| \d+ \| \d+ \| \d+ \| \d+ \| \d+ \|", md)  # error categories
    assert "Wall time per stage" in md and "| finetune |" in md
    html = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4  # corpus, tokenizer audit, pretraining curves, results
    assert (run / "finetune" / "models" / "tiny" / "htb-ner" / "README.md").is_file()

    # A second run finds everything finished and changes nothing but the report.
    before = (run / "finetune" / "_SUCCESS").stat().st_mtime_ns
    assert main(["run", str(config), *smaller]) == 0
    assert (run / "finetune" / "_SUCCESS").stat().st_mtime_ns == before
