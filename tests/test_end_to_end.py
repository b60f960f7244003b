"""The main job end to end: the tiny preset, made smaller still, from raw embedded text to the report.
Its corpus is also where the embedded default corpus is checked: what it holds, that no treebank dev or
test sentence is in it, and that datatrove's executor builds the same bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hebrew_lm.cli import main
from hebrew_lm.presets import load_preset, stage_config
from hebrew_lm.corpus.stage import run as build_corpus
from hebrew_lm.embedded.sources import _htb_sentences
from hebrew_lm.text.normalize import Normalizer

from helpers import corpus_files, read_corpus, read_stats

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_preset_end_to_end_report_has_every_section_with_real_numbers(tmp_path):
    preset = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text(encoding="utf-8"))
    preset["run_dir"] = str(tmp_path / "tiny")  # the model row is named after the run folder
    assert preset["finetune"]["tasks"][1] == {"name": "sentiment-demo", "max_epochs": 15}
    preset["finetune"]["tasks"][1]["max_epochs"] = 2  # still a per-task override, 8 s less
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(preset, allow_unicode=True), encoding="utf-8")
    smaller = ["--tokenizer.audit_baselines", "false", "--tokenizer.audit_max_docs", "50",
               "--pretrain.max_steps", "20", "--pretrain.warmup_steps", "2", "--pretrain.eval_every", "10",
               "--pretrain.checkpoint_every", "10", "--pretrain.eval_batches", "2",
               "--finetune.learning_rates", "1e-3", "--finetune.seeds", "1", "--finetune.max_epochs", "1"]
    assert main(["run", str(config), *smaller]) == 0

    run = tmp_path / "tiny"
    timings = json.loads((run / "timings" / "timings.json").read_text(encoding="utf-8"))
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

    # The embedded corpus (the default input), and the same corpus from datatrove's local executor in two
    # tasks (issue 18; tests/test_corpus_distributed.py), with no treebank dev or test sentence in either.
    corpus = run / "corpus"
    stats = read_stats(corpus)
    assert set(stats["sources"]) == {"embedded:scriptures", "embedded:htb-train"}
    assert stats["sources"]["embedded:htb-train"]["kept"] > 400
    assert stats["splits"]["validation"]["documents"] > 50
    two = build_corpus(stage_config(load_preset(config), "corpus", {"output_dir": str(tmp_path / "two"), "tasks": 2}))
    assert corpus_files(two) == corpus_files(corpus)
    normalize = Normalizer()
    corpus_text = "\n".join(r["text"] for split in ("train", "validation") for r in read_corpus(corpus, split))
    eval_sentences = [normalize(s["text_from_ud"]) for s in _htb_sentences() if s["set"] in ("dev", "test")]
    assert [s for s in eval_sentences if len(s.split()) >= 6 and s in corpus_text] == []
    assert "בראשית ברא אלהים את השמים ואת הארץ" in corpus_text

    # A second run finds everything finished and changes nothing but the report.
    before = (run / "finetune" / "_SUCCESS").stat().st_mtime_ns
    assert main(["run", str(config), *smaller]) == 0
    assert (run / "finetune" / "_SUCCESS").stat().st_mtime_ns == before
