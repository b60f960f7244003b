"""The Megatron-Bridge runs of a curriculum as shell scripts: the base imported, one pretraining run per phase
(each from the last one's weights, with the phase's blend, steps and its piece of the learning-rate
schedule), SFT, and each run exported back to a Hugging Face folder for `hebrew-lm eval`.

    scripts/00-import.sh            the Hugging Face base -> a Megatron checkpoint (convert.sh import)
    scripts/01-PHASE.sh ...         torchrun ... run_recipe.py --recipe RECIPE --mode pretrain KEY=VALUE ...
    scripts/NN-sft.sh               the SFT run on sft/training.jsonl, from the last phase's weights
    scripts/export.sh RUN           a run's last checkpoint -> hf/RUN, with the stage's tokenizer
    RUN.md                          the order, the environment variables, the evaluation command

Every KEY=VALUE a script passes is a field of the pinned Megatron-Bridge / Megatron-LM sources
(OVERRIDE_KEYS, SFT_OVERRIDE_KEYS: where each is declared); Megatron-Bridge needs Python >= 3.12 and CUDA,
so it cannot be imported here, and `scripts/check_megatron_bridge.py` checks the table against the
sources at the pinned commits instead.
"""

from __future__ import annotations

import shlex
from typing import Any

BRIDGE_COMMIT = "067f987df03b8355b03192d88d70f1709fedf51a"
"""NVIDIA-NeMo/Megatron-Bridge, 2026-08-22: the scripts' flags and keys were checked against it."""
MEGATRON_LM_COMMIT = "2a75ac12c54ba6a42b34024756820bf819a2e25f"
"""NVIDIA/Megatron-LM at Megatron-Bridge's 3rdparty/Megatron-LM submodule of that commit."""

_TRAINING = ("Megatron-LM", "megatron/training/config/training_config.py")
_BRIDGE_CONFIG = ("Megatron-Bridge", "src/megatron/bridge/training/config.py")
_BLEND = ("Megatron-LM", "megatron/core/datasets/blended_megatron_dataset_config.py", "BlendedMegatronDatasetConfig")
_PARALLEL = ("Megatron-LM", "megatron/core/model_parallel_config.py", "ModelParallelConfig")
_OPTIMIZER = ("Megatron-LM", "megatron/core/optimizer/optimizer_config.py", "OptimizerConfig")
_SFT_DATA = ("Megatron-Bridge", "src/megatron/bridge/data/builders/gpt_sft.py", "GPTSFTDatasetConfig")
_TRANSFORMER = ("Megatron-LM", "megatron/core/transformer/transformer_config.py", "TransformerConfig")
_HYBRID = ("Megatron-Bridge", "src/megatron/bridge/models/hybrid/hybrid_provider.py", "HybridModelProvider")

HYBRID_LAYERS = {"mamba": "M", "linear_attention": "M", "moe": "E", "attention": "*", "full_attention": "*", "mlp": "-"}
"""A NemotronH config's layer kinds (transformers' names, old and new) -> Megatron's hybrid pattern letters."""
MODEL_FIELDS = {  # Megatron's field -> the Hugging Face NemotronH config's
    "num_layers": "num_hidden_layers", "hidden_size": "hidden_size", "num_attention_heads": "num_attention_heads",
    "num_query_groups": "num_key_value_heads", "kv_channels": "head_dim", "ffn_hidden_size": "intermediate_size",
    "num_moe_experts": "n_routed_experts", "moe_ffn_hidden_size": "moe_intermediate_size",
    "moe_shared_expert_intermediate_size": "moe_shared_expert_intermediate_size", "moe_router_topk": "num_experts_per_tok",
    "moe_router_topk_scaling_factor": "routed_scaling_factor", "mamba_num_heads": "mamba_num_heads",
    "mamba_head_dim": "mamba_head_dim", "mamba_state_dim": "ssm_state_size", "mamba_num_groups": "n_groups",
}

COMMON_KEYS: dict[str, tuple[str, str, str]] = {
    "model.hybrid_layer_pattern": _HYBRID,
    **{f"model.{k}": _HYBRID if k == "mamba_num_groups" else _TRANSFORMER for k in MODEL_FIELDS},
    **{f"train.{k}": (*_TRAINING, "TrainingConfig") for k in ("train_iters", "global_batch_size", "micro_batch_size")},
    **{f"model.{k}": _PARALLEL for k in ("tensor_model_parallel_size", "pipeline_model_parallel_size",
                                         "expert_model_parallel_size")},
    **{f"tokenizer.{k}": (*_TRAINING, "TokenizerConfig") for k in ("tokenizer_type", "tokenizer_model")},
    **{f"checkpoint.{k}": (*_TRAINING, "CheckpointConfig") for k in ("pretrained_checkpoint", "save", "save_interval")},
}
OVERRIDE_KEYS: dict[str, tuple[str, str, str]] = {
    **COMMON_KEYS,
    "dataset.seq_length": (*_BRIDGE_CONFIG, "GPTDatasetConfig"),
    **{f"dataset.{k}": _BLEND for k in ("blend", "blend_per_split", "split")},
    **{f"optimizer.{k}": _OPTIMIZER for k in ("lr", "min_lr")},
    **{f"scheduler.{k}": (*_TRAINING, "SchedulerConfig") for k in (
        "lr_warmup_iters", "lr_decay_style", "lr_decay_iters", "lr_wsd_decay_iters", "lr_wsd_decay_style")},
}
"""Each key a phase script sets -> (repository, file, dataclass) declaring it at the pinned commits."""
SFT_OVERRIDE_KEYS: dict[str, tuple[str, str, str]] = {
    **COMMON_KEYS,
    **{f"dataset.{k}": _SFT_DATA for k in ("dataset_root", "seq_length", "dataset_kwargs", "do_test",
                                           "enable_offline_packing")},
}
RECIPE_FILE = ("Megatron-Bridge", "src/megatron/bridge/recipes/nemotronh/h100/nemotron_3_nano.py")
"""Where the default recipes are defined."""
TOOLS = {"run_recipe": "scripts/training/run_recipe.py", "convert": "scripts/conversion/convert.sh"}


def run_schedule(c, start: int, end: int) -> dict[str, Any]:
    """The learning-rate overrides of the run that trains global steps [start, end) of the curriculum, so that
    the runs together follow the CPU path's schedule (`engine.optim.lr_factor`): warm-up in the run that
    holds it, then each run linear between the rates at its ends, or stable, or stable then decaying (WSD).
    Exact for the linear shapes (wsd; decay with lr_decay_power 1); a curved decay is followed at the runs'
    ends only."""
    from hebrew_lm.engine.optim import lr_factor

    peak, warmup = c.learning_rate, max(0, min(c.warmup_steps, end) - start) if start < c.warmup_steps else 0
    lr_at = lambda step: peak if step < c.warmup_steps else peak * lr_factor(step, c)  # noqa: E731
    first, last = lr_at(start), (peak * lr_factor(end, c) if end < c.max_steps else 0.0)
    out: dict[str, Any] = {"scheduler.lr_warmup_iters": warmup, "optimizer.lr": f"{first:.6g}",
                           "optimizer.min_lr": f"{last:.6g}"}
    decay_start = c.max_steps - max(1, round(c.decay_fraction * c.max_steps)) if c.schedule == "wsd" else c.warmup_steps
    if end <= decay_start:
        out["scheduler.lr_decay_style"] = "constant"
    elif start >= decay_start or c.schedule != "wsd":
        out.update({"scheduler.lr_decay_style": "linear", "scheduler.lr_decay_iters": end - start})
    else:  # stable, then the decay starts inside this run
        out.update({"scheduler.lr_decay_style": "WSD", "scheduler.lr_decay_iters": end - start,
                    "scheduler.lr_wsd_decay_iters": end - decay_start, "scheduler.lr_wsd_decay_style": "linear"})
    return out


HEADER = """#!/usr/bin/env bash
# {what}
# Written by `hebrew-lm megatron` for Megatron-Bridge {commit} (git checkout it in $MEGATRON_BRIDGE); run it
# inside NVIDIA's NeMo container. Not run where it was written (no GPU there): docs/scale.md.
set -euo pipefail
here=$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)
: "${{MEGATRON_BRIDGE:?set MEGATRON_BRIDGE to a Megatron-Bridge checkout}}"
checkpoints=${{CHECKPOINTS:-$here/checkpoints}}
base=${{BASE:-{base}}}
"""


def _torchrun(c, recipe: str, mode: str, overrides: dict[str, Any]) -> str:
    lines = [f'torchrun --nnodes "${{NNODES:-{c.nodes}}}" --node-rank "${{NODE_RANK:-0}}" --nproc-per-node {c.gpus_per_node} \\',
             '  --master-addr "${MASTER_ADDR:-localhost}" --master-port "${MASTER_PORT:-29500}" \\',
             f'  "$MEGATRON_BRIDGE/{TOOLS["run_recipe"]}" --recipe {recipe} --mode {mode} \\']
    items = list(overrides.items())
    for n, (key, value) in enumerate(items):
        text = value if isinstance(value, str) and value.startswith('"') else shlex.quote(str(value))
        lines.append(f"  {key}={text}" + (" \\" if n < len(items) - 1 else ""))
    return "\n".join(lines) + "\n"


def model_overrides(init_from: str) -> dict[str, Any]:
    """The base's shape as Megatron model fields, so a run builds the model its checkpoint holds (the recipe's
    own is Nemotron-3 Nano's); empty for a family the recipe is not for."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(init_from)
    if config.model_type != "nemotron_h":
        return {}
    kinds = list(config.layers_block_type)
    values = {**config.to_dict(), "num_hidden_layers": len(kinds)}
    return {"model.hybrid_layer_pattern": "".join(HYBRID_LAYERS[k] for k in kinds),
            **{f"model.{ours}": values[theirs] for ours, theirs in MODEL_FIELDS.items() if values.get(theirs) is not None}}


def check_recipe(c) -> None:
    """Refuse, before anything is written, a NemotronH recipe for a base of another family."""
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(c.init_from).model_type
    for field, recipe in (("recipe", c.recipe), ("sft_recipe", c.sft_recipe)):
        if recipe.startswith("nemotron") and model_type != "nemotron_h":
            raise ValueError(f"megatron.{field}: {recipe} builds a NemotronH model, and {c.init_from} is {model_type}; "
                             "give a Megatron-Bridge recipe of its family")


def shared_overrides(c) -> dict[str, Any]:
    """What every training run sets alike: the base's shape, the parallelism, the tokenizer (read once)."""
    return {**model_overrides(c.init_from), "model.tensor_model_parallel_size": c.tensor_parallel,
            "model.pipeline_model_parallel_size": c.pipeline_parallel, "model.expert_model_parallel_size": c.expert_parallel,
            "tokenizer.tokenizer_type": "HuggingFaceTokenizer", "tokenizer.tokenizer_model": '"$here/tokenizer"'}


def _header(what: str, base: str) -> str:
    return HEADER.format(what=what, commit=BRIDGE_COMMIT[:12], base=base)


def _blend(pairs: list[tuple[float, str]]) -> str:
    return f"[[{','.join('$here/' + p for _, p in pairs)}],[{','.join(f'{w:g}' for w, _ in pairs)}]]"


def phase_script(c, run: int, name: str, start: int, end: int, train: list, valid: list, previous: str, base: str,
                 shared: dict[str, Any]) -> str:
    """One phase's run: its blend per split, its steps, its piece of the schedule, from `previous`'s weights."""
    overrides: dict[str, Any] = {
        "train.train_iters": end - start, "train.global_batch_size": c.global_batch_size,
        "train.micro_batch_size": c.device_batch_size, "dataset.seq_length": c.max_seq_len,
        "dataset.blend": "null", "dataset.split": "null",
        "dataset.blend_per_split": f'"[{_blend(train)},{_blend(valid)},null]"',
        **run_schedule(c, start, end), **shared,
        "checkpoint.pretrained_checkpoint": f'"$checkpoints/{previous}"', "checkpoint.save": f'"$checkpoints/{name}"',
        "checkpoint.save_interval": max(1, min(1000, end - start)),
    }
    what = (f"Run {run}: phase {name!r}, global steps {start:,} to {end:,} of the curriculum "
            f"({(end - start) * c.global_batch_size * c.max_seq_len:,} tokens), from the weights of {previous!r}.")
    return _header(what, base) + _torchrun(c, c.recipe, "pretrain", overrides)


def sft_script(c, run: int, previous: str, base: str, shared: dict[str, Any]) -> str:
    overrides: dict[str, Any] = {
        "train.train_iters": c.sft_steps, "train.global_batch_size": c.sft_global_batch_size,
        "train.micro_batch_size": c.device_batch_size, "dataset.dataset_root": '"$here/sft"',
        "dataset.seq_length": c.sft_max_seq_len, "dataset.dataset_kwargs": "{chat:true,use_hf_tokenizer_chat_template:true}",
        "dataset.do_test": "false", "dataset.enable_offline_packing": "false", **shared,
        "checkpoint.pretrained_checkpoint": f'"$checkpoints/{previous}"', "checkpoint.save": '"$checkpoints/sft"',
        "checkpoint.save_interval": max(1, min(1000, c.sft_steps)),
    }
    what = (f"Run {run}: SFT on sft/training.jsonl (Hugging Face chat format, loss on the assistant's turns, the "
            f"tokenizer's chat template), from the weights of {previous!r}.")
    return _header(what, base) + _torchrun(c, c.sft_recipe, "sft", overrides)


def import_script(base: str) -> str:
    what = "Run 0: the Hugging Face base (its extended vocabulary and the chat markers in place) as a Megatron checkpoint."
    return _header(what, base) + (
        f'"$MEGATRON_BRIDGE/{TOOLS["convert"]}" import --executor local --device cpu \\\n'
        '  --hf-model "$base" --megatron-path "$checkpoints/base"\n')


def export_script(base: str) -> str:
    what = ("export.sh RUN: RUN's last checkpoint as a Hugging Face folder, hf/RUN, with the stage's tokenizer "
            "(extended vocabulary, chat template), for `hebrew-lm eval`.")
    return _header(what, base) + (
        'run=${1:?give the run to export: a phase name or sft}\n'
        'iteration=$(cat "$checkpoints/$run/latest_checkpointed_iteration.txt")\n'
        f'"$MEGATRON_BRIDGE/{TOOLS["convert"]}" export --executor local --device cpu \\\n'
        '  --hf-model "$base" --megatron-path "$checkpoints/$run/iter_$(printf %07d "$iteration")" \\\n'
        '  --hf-path "$here/hf/$run"\n'
        'cp "$here"/tokenizer/* "$here/hf/$run/"\n')
