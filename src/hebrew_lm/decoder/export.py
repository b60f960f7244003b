"""Export a trained decoder as a plain Hugging Face folder: weights, config, generation config, the
tokenizer made causal (no end-of-sequence token appended to a prompt), and a model card with total and
active parameters and the final expert load; and draw the expert load as a heatmap.

    AutoModelForCausalLM.from_pretrained("runs/tiny-decoder/decoder/model")
    pipeline("text-generation", model="runs/tiny-decoder/decoder/model")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hebrew_lm.engine.export import write_model_folder

CARD = """---
license: other
library_name: transformers
pipeline_tag: text-generation
tags:
- hebrew-lm
- mixture-of-experts
- causal-lm
---

# {name}

A causal language model trained by [hebrew-lm](https://github.com/)'s decoder stage ({family}):
{total:,} parameters, {active:,} active per token ({active_share:.0%}).

- steps: {steps:,}, global batch {batch} sequences of at most {seq_len} tokens (documents are never
  packed together); about {tokens:,} tokens seen (sequences x their mean length, padding not counted)
- AdamW beta ({b1}, {b2}), eps {eps}, weight decay {wd}, peak learning rate {lr}, warmup {warmup} steps,
  gradient clipping {clip}, {precision}
- expert balancing: {balancing}; busiest expert at the end: {load} x the mean load
- final training loss {loss}, validation loss {val_loss}

```python
from transformers import pipeline
generate = pipeline("text-generation", model="PATH")
```

## Data and license

Trained on the corpus in `{corpus}`; the model inherits the terms of that text (and of `init_from`,
when it continued a base).
"""


ENCODER_ROLES = ("sep_token", "cls_token", "mask_token")
"""Special-token roles only an encoder has. A causal LM that declares a separator gets it appended to every
text prompt by llama-cpp-python's completion API (meant for BERT-style embedding models), so they are
dropped; the tokens themselves keep their ids."""


def causal_tokenizer(folder: Path) -> None:
    """A causal LM's prompt is its tokens alone: the tokenizer stage's RoBERTa template (<s> A </s>)
    would end every prompt with the end-of-sequence token. Such a template becomes the byte-level offsets
    step alone; a template that only opens a text (Gemma's `<bos> A`) is how its base starts every text
    and stays (dropping it once fed Gemma's CPT and SFT models their texts without `<bos>`). The encoder's
    roles are dropped (ENCODER_ROLES)."""
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    post = data.get("post_processor") or {}
    if post.get("type") in ("RobertaProcessing", "BertProcessing") or (
            post.get("type") == "TemplateProcessing" and "SpecialToken" in (post.get("single") or [{}])[-1]):
        data["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                                  "use_regex": True}
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    if any(role in config for role in ENCODER_ROLES):
        config_path.write_text(json.dumps({k: v for k, v in config.items() if k not in ENCODER_ROLES}, indent=2,
                                          ensure_ascii=False) + "\n", encoding="utf-8")


def export_decoder(model, tokenizer_dir: Path, dest: Path, config, stats: dict[str, Any]) -> Path:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "n/a"  # noqa: E731
    family = config.init_from and f"continued from `{Path(config.init_from).name}`" or f"preset `{config.model}`"
    model.generation_config.max_new_tokens = 64
    card = CARD.format(
        name=f"hebrew-lm decoder ({config.init_from and Path(config.init_from).name or config.model})", family=family,
        total=stats["parameters"], active=stats["active_parameters"],
        active_share=stats["active_parameters"] / stats["parameters"], steps=stats["steps"],
        batch=config.global_batch_size, seq_len=config.max_seq_len, tokens=stats["tokens_seen"],
        b1=config.adam_beta1, b2=config.adam_beta2, eps=config.adam_eps, wd=config.weight_decay,
        lr=config.learning_rate, warmup=config.warmup_steps, clip=config.grad_clip or "off",
        precision=config.precision, balancing=stats.get("balancing", "n/a"), load=fmt(stats.get("final_max_over_mean_load")),
        loss=fmt(stats.get("final_loss")), val_loss=fmt(stats.get("final_val_loss")),
        corpus=Path(config.corpus_dir).name)
    return write_model_folder(model, tokenizer_dir, dest, card, edit_tokenizer=causal_tokenizer)


def plot_expert_load(load: list[torch.Tensor], path: Path) -> None:
    """Layers x experts: each expert's share of its layer's routed tokens (even load is 1 / experts)."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    if not load:
        return
    grid = torch.stack(load).numpy()
    fig, ax = plt.subplots(figsize=(max(4, grid.shape[1] * 0.25 + 2), max(2, grid.shape[0] * 0.4 + 1)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xlabel("expert")
    ax.set_ylabel("MoE layer")
    ax.set_title(f"share of routed tokens (even: {1 / grid.shape[1]:.3f})")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
