"""The report: a tiny run's every stage gathered into one self-contained HTML page, rendered in headless
Chromium (which scripts/setup.sh installs; skipped with the reason when it is missing), and into Markdown."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from hebrew_lm.finetune.config import FinetuneConfig, TaskSpec
from hebrew_lm.mlm.config import PretrainConfig
from hebrew_lm.report.config import ReportConfig
from hebrew_lm.finetune.stage import run as finetune
from hebrew_lm.mlm import stage as pretrain
from hebrew_lm.report.stage import run as report

from helpers import corpus_and_tokenizer

SECTIONS = ["corpus", "tokenizer", "pretraining", "results", "errors", "environment"]


def chromium() -> str:
    """Debian's chromium, which scripts/setup.sh installs; without it the test is skipped, never installs."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed: `bash scripts/setup.sh` installs Debian's chromium as root")
    return found


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, hebrew_docs):
    root = corpus_and_tokenizer(tmp_path_factory.mktemp("rep"), hebrew_docs[:250])
    pretrain.run(PretrainConfig(
        corpus_dir=str(root / "corpus"), tokenizer_dir=str(root / "tok"), output_dir=str(root / "pt"),
        cache_dir=str(root / "cache"), model="tiny", max_seq_len=64, global_batch_size=8, micro_batch_size=8,
        max_steps=10, warmup_steps=2, learning_rate=1e-3, eval_every=5, eval_batches=1, checkpoint_every=10))
    finetune(FinetuneConfig(output_dir=str(root / "ft"), models=[str(root / "pt" / "model")], model_names=["tiny-he"],
                            tasks=[TaskSpec("sentiment-demo")], learning_rates=[1e-3], batch_sizes=[32], seeds=[1, 2],
                            max_epochs=1, patience=1, export_best=False))
    report(ReportConfig(output_dir=str(root / "report"), folders={"tokenizer": str(root / "tok"),
                        "pretrain": str(root / "pt"), "finetune": str(root / "ft")}, timings=""))
    return root


def test_markdown_report_has_every_section_with_real_numbers(run_dir):
    md = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    for title in ("## Corpus", "## Tokenizer", "## Pretraining", "## Fine-tuning results", "## Error analysis",
                  "## Environment"):
        assert title in md
    assert "has not run" not in md
    assert re.search(r"\| tiny-he \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d \|", md)
    # The headline says what results.json says: the sign and size of the average difference, and per task
    # whether the difference exceeds the larger seed std (computed here by hand, not by the report's code).
    results = json.loads((run_dir / "ft" / "results.json").read_text(encoding="utf-8"))
    ours, base = results["models"]["tiny-he"], results["models"]["tiny-he (random init)"]
    diff = 100 * (ours["average"] - base["average"])
    verb = (f"bought {diff:.2f} points" if diff >= 0.005 else f"cost {-diff:.2f} points" if diff <= -0.005
            else "and random init tie")
    assert f"Pretraining {verb} on average: tiny-he {100 * ours['average']:.2f} against tiny-he (random init) " \
           f"{100 * base['average']:.2f}" in md
    a, b = ours["tasks"]["sentiment-demo"]["test"], base["tasks"]["sentiment-demo"]["test"]
    noise = "beyond" if abs(a["mean"] - b["mean"]) > max(a["std"], b["std"]) else "within"
    assert f"{100 * a['mean']:.1f} vs {100 * b['mean']:.1f}, {noise} seed noise" in md
    for image in re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", md):
        assert (run_dir / "report" / image).stat().st_size > 1000
    assert len(re.findall(r"!\[", md)) == 3  # corpus, pretraining curves, results (the tokenizer had no audit)
    assert "| torch |" in md and "CPU cores" in md
    fill = json.loads((run_dir / "pt" / "stats.json").read_text())["fill_mask"]
    assert fill["masked_positions"] > 0 and 0 <= fill["top1"] <= fill["top5"] <= 1
    assert fill["unigram_top1"] <= fill["unigram_top5"] and len(fill["probe"]["guesses"]) == 5
    assert f"first guess is right {100 * fill['top1']:.1f}% of the time" in md and "unigram baseline" in md


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium_with_every_section_and_image(run_dir, tmp_path):
    browser = chromium()
    page = (run_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page and "src=\"http" not in page and "src=\"img/" not in page  # self-contained
    # A copy with a probe that records, once loaded, each section and whether each image decoded.
    probe = """<script>window.addEventListener('load', () => {
      const ids = [...document.querySelectorAll('section')].map(s => s.id).join(',');
      const imgs = [...document.images].map(i => i.complete && i.naturalWidth > 0 ? 'ok' : 'broken').join(',');
      document.body.setAttribute('data-probe', ids + '|' + imgs);});</script>"""
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", probed.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    ids, images = re.search(r'data-probe="([^"|]*)\|([^"]*)"', dom).groups()
    assert ids.split(",") == SECTIONS
    assert images.split(",") == ["ok"] * 3
    shot = run_dir / "report" / "screenshot.png"  # kept for a person to look at
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400",
                    (run_dir / "report" / "index.html").as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    pixels = Image.open(shot).convert("L").getextrema()
    assert pixels[0] < 100 < pixels[1]  # not a blank page: dark text on a light background
