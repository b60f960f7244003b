"""RoBERTa encoder presets and the masked-LM loss computed only where there are labels.

    config = roberta_config("base", vocab_size=52_000)       # the paper's 126,031,648 parameters
    loss = masked_lm_loss(model, input_ids, labels)

The stock `RobertaForMaskedLM` projects every position onto the whole vocabulary (52k logits for
each of 512 positions) although only ~15% of positions carry a label; projecting only those gives the
same loss at a fraction of the cost (measured 3.2x faster on CPU for a tiny model, STACK-NOTES.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import RobertaConfig, RobertaForMaskedLM

from hebrew_lm.tokenizer.specials import BOS, EOS, PAD, SPECIAL_TOKENS

# layers, hidden size, attention heads, feed-forward size
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512},
    "small": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024},
    "base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"num_hidden_layers": 24, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096},
}


def roberta_config(preset: str, vocab_size: int, max_seq_len: int = 512, dropout: float = 0.1) -> RobertaConfig:
    """A RobertaConfig for a preset. RoBERTa keeps two position slots for its padding offset, so 512
    tokens need 514 positions."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return RobertaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=max_seq_len + 2,
        type_vocab_size=1,
        pad_token_id=SPECIAL_TOKENS.index(PAD),
        bos_token_id=SPECIAL_TOKENS.index(BOS),
        eos_token_id=SPECIAL_TOKENS.index(EOS),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        layer_norm_eps=1e-5,
        tie_word_embeddings=True,
        **PRESETS[preset],
    )


def build_model(config: RobertaConfig, device: str | torch.device | None = None) -> RobertaForMaskedLM:
    """The model for `config`; on the "meta" device it costs no memory (for counting parameters)."""
    with torch.device(device or "cpu"):
        return RobertaForMaskedLM(config)


def masked_lm_loss(model: RobertaForMaskedLM, input_ids: torch.Tensor, labels: torch.Tensor,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over the labelled positions, projecting only those onto the vocabulary.
    Packed pretraining sequences have no padding, so they pass no attention mask: an all-ones mask
    costs transformers a data-dependent check (a device sync on a GPU) before it drops it anyway."""
    hidden = model.roberta(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # B,T,H
    selected = labels != -100  # B,T
    logits = model.lm_head(hidden[selected])  # N,V for the N labelled positions
    return F.cross_entropy(logits.float(), labels[selected])


class MaskedLMObjective(torch.nn.Module):
    """The model with `masked_lm_loss` as its forward, so that DDP (which syncs gradients through the
    wrapped module's forward) and torch.compile see one module."""

    # Tied to other weights (the input embeddings, lm_head.bias): checkpoints store them once.
    tied_keys = ("lm_head.decoder.weight", "lm_head.decoder.bias")

    def __init__(self, model: RobertaForMaskedLM) -> None:
        super().__init__()
        self.model = model

    def fsdp_units(self) -> list[torch.nn.Module]:
        """One FSDP unit per encoder layer; embeddings and the (tied) head stay in the root unit."""
        return list(self.model.roberta.encoder.layer)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return masked_lm_loss(self.model, input_ids, labels)
