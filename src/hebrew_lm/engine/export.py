"""Hugging Face folders and curves for any trained model: the one place a model folder is written.

    write_model_folder(model, tokenizer_dir, dest, card_text)   # dest/ loads with from_pretrained
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hebrew_lm.runs import fsync_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "normalization.json",
                   "chat_template.jinja")


def write_model_folder(model, tokenizer_dir: Path, dest: Path, card: str,
                       edit_tokenizer: Callable[[Path], None] | None = None) -> Path:
    """model (safetensors) + the tokenizer's files + README.md into dest, written under a temporary name
    inside dest's parent and renamed, so a kill never leaves a half folder under dest's name.
    `edit_tokenizer(folder)` may adapt the copied tokenizer files (a causal LM's post-processor)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).is_file():
            shutil.copy2(Path(tokenizer_dir) / name, tmp / name)
    if edit_tokenizer is not None:
        edit_tokenizer(tmp)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    fsync_dir(dest.parent)
    return dest


def plot_curves(records: list[dict[str, Any]], path: Path, loss_label: str = "training loss (masked positions)") -> None:
    """Training loss and validation perplexity against steps."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    train = [(r["step"], r["loss"]) for r in records if "loss" in r and "event" not in r]
    val = [(r["step"], r["val_perplexity"]) for r in records if "val_perplexity" in r]
    spikes = [r["step"] for r in records if r.get("event") == "spike"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        a.plot(*zip(*train), color="#264653")
    for s in spikes:
        a.axvline(s, color="#e76f51", lw=0.8, ls="--")
    a.set_xlabel("step")
    a.set_ylabel(loss_label)
    if val:
        b.plot(*zip(*val), marker="o", color="#2a9d8f")
        b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("validation perplexity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
