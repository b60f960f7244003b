"""What the encoder learned before any fine-tuning: fill-mask accuracy on held-out text against the
unigram baseline, and the top guesses for a probe sentence.

Each of up to `sequences` validation sequences gets 15% of its ordinary tokens replaced by <mask> (all
of them: no 80/10/10, this measures, it does not train), with a fixed seed; accuracy is the share of
masked positions whose true token is the model's first guess (top-1) or among its five (top-5). The
baseline guesses the training split's most frequent ordinary tokens everywhere: a model that learned
nothing but token frequencies scores it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

PROBE = "ירושלים היא <mask> של ישראל."


def fill_mask_scores(model, masker, val_sequences, train_store: Path, sequences: int = 64,
                     batch_size: int = 8, seed: int = 0) -> dict[str, float]:
    """Top-1/top-5 accuracy of `model` at masked held-out positions, and the unigram baseline's."""
    from hebrew_lm.engine.token_store import load_tokens

    counts = np.bincount(np.asarray(load_tokens(train_store)), minlength=masker.vocab_size)[: masker.vocab_size]
    counts[masker.is_special.numpy()] = 0
    frequent = torch.from_numpy(np.argsort(-counts)[:5].copy())
    generator = torch.Generator().manual_seed(seed)
    n = min(sequences, len(val_sequences))
    hits1 = hits5 = base1 = base5 = total = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            ids = torch.stack([val_sequences[i] for i in range(start, min(n, start + batch_size))])
            chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & ~masker.is_special[ids]
            inputs = ids.clone()
            inputs[chosen] = masker.mask_id
            logits = model(input_ids=inputs).logits[chosen]  # masked positions, V
            gold = ids[chosen]
            top5 = logits.topk(5, dim=-1).indices
            hits1 += int((top5[:, 0] == gold).sum())
            hits5 += int((top5 == gold[:, None]).any(-1).sum())
            base1 += int((gold == frequent[0]).sum())
            base5 += int(torch.isin(gold, frequent).sum())
            total += int(gold.numel())
    if not total:
        return {}
    return {"masked_positions": total, "top1": hits1 / total, "top5": hits5 / total,
            "unigram_top1": base1 / total, "unigram_top5": base5 / total}


def probe_guesses(model_dir: Path, text: str = PROBE, k: int = 5) -> list[dict[str, Any]]:
    """The exported model's top-k fillers for the probe sentence, through transformers' fill-mask pipeline."""
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(model_dir), top_k=k)
    return [{"token": g["token_str"], "score": float(g["score"])} for g in fill(text)]
