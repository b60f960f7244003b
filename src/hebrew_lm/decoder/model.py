"""Decoder presets: Nemotron-3-shaped hybrid Mamba-2 + MoE + attention models as `NemotronHForCausalLM`
(and tiny Llama, Qwen3-MoE and Gemma 3 models beside them), their parameter counts (total and active per
token, counted on the meta device) and the shape `plan` reads of any causal family's config.

    config = decoder_config("hebatron", vocab_size=131_072)
    counts = parameter_counts(config)     # total 31,577,937,344; active 3,580,073,408

A layer pattern is a string, one letter a layer: M Mamba-2, E MoE, * attention, - dense MLP (Nemotron's
own notation). The MoE router is sigmoid top-k with a per-expert correction bias (DeepSeek-V3 style,
no aux loss); experts are non-gated relu2 MLPs; one shared expert runs for every token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

LAYER_KINDS = {"M": "mamba", "E": "moe", "*": "attention", "-": "mlp"}

# Nemotron-3 Nano 30B-A3B (Hebatron's base): the shape the issue and the model card give.
HEBATRON_PATTERN = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"

# Minutes on 2 CPU cores: the Nemotron-3 pattern in miniature (Mamba-2, MoE and attention layers).
_TINY = dict(pattern="MEM*EM", hidden_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
             mamba_num_heads=8, mamba_head_dim=32, ssm_state_size=16, n_groups=1, n_routed_experts=8,
             num_experts_per_tok=2, moe_intermediate_size=128, moe_shared_expert_intermediate_size=256,
             intermediate_size=512)

PRESETS: dict[str, dict[str, Any]] = {
    "decoder-tiny": _TINY,
    "decoder-small": dict(pattern="MEMEM*EMEM*EME", hidden_size=384, num_attention_heads=6, num_key_value_heads=2,
                          head_dim=64, mamba_num_heads=12, mamba_head_dim=64, ssm_state_size=32, n_groups=2,
                          n_routed_experts=32, num_experts_per_tok=4, moe_intermediate_size=256,
                          moe_shared_expert_intermediate_size=512, intermediate_size=1536),
    # About 1B active parameters (1.07B of 3.5B at vocabulary 131,072): the GPU benchmark's MoE, with
    # Nemotron-3 Nano's proportions (64 experts top-6 + 1 shared, 24 layers) at a width one GPU trains.
    "decoder-1b": dict(pattern="MEMEM*EMEMEM*EMEMEM*EME", hidden_size=2048, num_attention_heads=16,
                       num_key_value_heads=2, head_dim=128, mamba_num_heads=32, mamba_head_dim=64, ssm_state_size=128,
                       n_groups=8, n_routed_experts=64, num_experts_per_tok=6, moe_intermediate_size=1024,
                       moe_shared_expert_intermediate_size=2048, intermediate_size=4096),
    # decoder-tiny with each MoE layer replaced by a dense MLP of the same active width (2 experts of
    # 128 + the shared 256 = 512): the same active parameters per token, for MoE-against-dense comparisons.
    "dense-tiny": {**_TINY, "pattern": "M-M*-M"},
    # ... widened to decoder-tiny's total parameters (MLP 1,280 = 8 experts x 128 + the shared 256): the
    # dense model "of similar size" that sparse activation is measured against.
    "dense-tiny-wide": {**_TINY, "pattern": "M-M*-M", "intermediate_size": 1280},
    # decoder-tiny with every Mamba-2 layer replaced by attention (8 heads, 4 key-value heads: 0.9% more
    # parameters in all): attention in every layer, for the long-context cost curve (bench/long_context.py).
    "attention-tiny": {**_TINY, "pattern": "*E**E*", "num_attention_heads": 8, "num_key_value_heads": 4},
    # Other families at decoder-tiny's width, from random initialization: the engine, the loss and `plan`
    # read any causal family transformers builds from a config (ablations against the hybrid).
    "llama-tiny": dict(family="llama", hidden_size=128, num_hidden_layers=6, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=32, intermediate_size=512),
    "qwen3-moe-tiny": dict(family="qwen3_moe", hidden_size=128, num_hidden_layers=6, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=32, num_experts=8, num_experts_per_tok=2,
                           moe_intermediate_size=128, intermediate_size=512,
                           norm_topk_prob=True),  # as Qwen3-30B-A3B; llama.cpp's qwen3moe always renormalizes
    "gemma3-tiny": dict(family="gemma3_text", hidden_size=128, num_hidden_layers=6, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=32, intermediate_size=512, sliding_window=128),
    "hebatron": dict(pattern=HEBATRON_PATTERN, hidden_size=2688, num_attention_heads=32, num_key_value_heads=2,
                     head_dim=128, mamba_num_heads=64, mamba_head_dim=64, ssm_state_size=128, n_groups=8,
                     n_routed_experts=128, num_experts_per_tok=6, moe_intermediate_size=1856,
                     moe_shared_expert_intermediate_size=3712, intermediate_size=1856 * 2,
                     max_position_embeddings=65_536),
}


def decoder_config(preset: str, vocab_size: int, max_position_embeddings: int | None = None, **overrides):
    """The config of a preset: NemotronH's (untied embeddings, relu2, sigmoid router with correction bias)
    from its layer pattern, or another family's (`family`) with transformers' own defaults for the rest."""
    from transformers import AutoConfig, NemotronHConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown decoder preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[preset])
    family = values.pop("family", "nemotron_h")
    values.setdefault("max_position_embeddings", 4096)
    if max_position_embeddings:
        values["max_position_embeddings"] = max_position_embeddings
    values.update(overrides)
    if family != "nemotron_h":
        return AutoConfig.for_model(family, vocab_size=vocab_size, tie_word_embeddings=False, **values)
    pattern = values.pop("pattern")
    return NemotronHConfig(vocab_size=vocab_size, layers_block_type=[LAYER_KINDS[c] for c in pattern],
                           tie_word_embeddings=False, mlp_hidden_act="relu2", expand=2,
                           **values)


@dataclass
class ParameterCounts:
    total: int
    routed_experts: int
    active: int
    """Per token: everything but the routed experts, plus top-k of each MoE layer's routed experts."""
    embeddings: int
    """Input embeddings plus the output projection (untied, so counted twice as the model holds them)."""

    @property
    def active_without_embeddings(self) -> int:
        return self.active - self.embeddings


def parameter_counts(config) -> ParameterCounts:
    """Counts of a model built on the meta device (no memory, instant even for 31B)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = routed = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if ".experts." in name:
            routed += p.numel()
    shape = model_shape(config)
    experts = shape.experts or 1
    top_k = shape.top_k or experts
    active = total - routed + routed * top_k // experts
    embeddings = model.get_input_embeddings().weight.numel()
    if not getattr(config, "tie_word_embeddings", False):
        embeddings += model.get_output_embeddings().weight.numel()
    return ParameterCounts(total, routed, active, embeddings)


@dataclass
class ModelShape:
    """What `plan` needs of any causal family's config, read the same way for NemotronH, Llama, Mixtral,
    Qwen3-MoE and Gemma 3 (each names these fields differently)."""

    layer_kinds: list[str]
    """One entry a layer: NemotronH's block types, a family's `layer_types`, or `attention` throughout."""
    hidden: int
    vocab: int
    attention_width: int
    """Query heads x head size: what attention's score FLOPs scale with."""
    experts: int
    """Routed experts of each MoE layer (0: dense)."""
    top_k: int
    shared_experts: int

    @property
    def attention_layers(self) -> int:
        # NemotronH calls its Mamba-2 layers linear_attention: no seq x seq scores there
        return sum(1 for kind in self.layer_kinds if kind in ("attention", "full_attention", "sliding_attention"))


def model_shape(config) -> ModelShape:
    """The `ModelShape` of a transformers config of any causal family (a multimodal one's text part)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = text.num_hidden_layers
    kinds = getattr(text, "layers_block_type", None) or getattr(text, "layer_types", None) or ["attention"] * layers
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    experts = next((getattr(text, k) for k in ("n_routed_experts", "num_local_experts", "num_experts")
                    if getattr(text, k, None)), 0)
    return ModelShape(list(kinds), text.hidden_size, text.vocab_size, heads * head_dim, experts,
                      getattr(text, "num_experts_per_tok", 0) or 0 if experts else 0,
                      getattr(text, "n_shared_experts", 0) or 0 if experts else 0)
