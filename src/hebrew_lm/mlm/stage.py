"""The pretraining stage: a RoBERTa masked-LM encoder trained from scratch on the Hebrew corpus.

    hebrew-lm pretrain configs/tiny.yaml                             # one CPU process
    torchrun --nproc_per_node 8 -m hebrew_lm pretrain configs/hallelubert-base.yaml   # DDP

The masked LM is one objective on the shared training engine (`hebrew_lm.engine`): this module builds
the RoBERTa model, its masked batches (logits only at masked positions) and its validation, and the
engine trains them (exact resume, spike recovery, atomic checkpoints, DDP/FSDP2).
Output folder:
    model/                  the exported Hugging Face model (safetensors, config, tokenizer, card)
    checkpoints/ckpt-STEP/  model.safetensors, optimizer.pt, state.json (the newest keep_checkpoints)
    metrics.jsonl           one record per logged step and per validation
    curves.png, stats.json, config.yaml, _SUCCESS
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch

from hebrew_lm.mlm.config import PretrainConfig
from hebrew_lm.mlm.data import PackedSequences
from hebrew_lm.mlm.masking import Masker, mask_tokens
from hebrew_lm.mlm.model import MaskedLMObjective, build_model, roberta_config
from hebrew_lm.engine.dist import Dist
from hebrew_lm.engine.folder import token_stores
from hebrew_lm.engine.loop import evaluate_batches, fixed_batch_indices
from hebrew_lm.engine.runner import Prepared, TrainingData, TrainingStage, run_training_stage

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


def mask_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """Masking depends only on (seed, step, global micro-batch), so a resumed or re-sharded run masks alike."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 65_537 + micro)


def evaluate(objective, data: PackedSequences, masker: Masker, c: PretrainConfig, dist_: Dist, autocast) -> float:
    """Masked-LM loss on fixed validation batches, masked the same way every time."""
    batches = (mask_tokens(torch.stack([data[i] for i in idx]), masker, mask_generator(c.seed + 7919, 0, b))
               for b, idx in enumerate(fixed_batch_indices(len(data), c.micro_batch_size, c.eval_batches)))
    return evaluate_batches(objective, batches, dist_, autocast)


def check(c: PretrainConfig, tokenizer_dir: Path) -> None:
    """max_seq_len within the positions the tokenizer declares, before the output folder is claimed."""
    positions = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get(
        "model_max_length", c.max_seq_len) if (tokenizer_dir / "tokenizer_config.json").is_file() else c.max_seq_len
    if c.max_seq_len > positions:
        raise ValueError(f"pretrain.max_seq_len is {c.max_seq_len}, more than the {positions} positions the tokenizer "
                         f"declares (model_max_length in {tokenizer_dir / 'tokenizer_config.json'}); lower max_seq_len, "
                         f"or train the tokenizer with a larger tokenizer.model_max_length")


def prepare(c: PretrainConfig, corpus_dir: Path, tokenizer_dir: Path, dist_: Dist) -> Prepared:
    """The masked LM on the engine: packed sequences, the RoBERTa model, masked batches and validation."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    vocab_size = tokenizer.get_vocab_size()
    train_store, val_store = token_stores(corpus_dir, tokenizer_dir, c.cache_dir, dist_)
    train_data = PackedSequences(train_store, c.max_seq_len)
    has_val = json.loads((val_store / "meta.json").read_text())["num_tokens"] >= c.max_seq_len
    val = PackedSequences(val_store, c.max_seq_len) if has_val else None
    if len(train_data) < c.global_batch_size:
        log.warning("pretrain: the corpus holds %d sequences of %d tokens, fewer than one global batch (%d); "
                    "they will repeat within a step", len(train_data), c.max_seq_len, c.global_batch_size)

    torch.manual_seed(c.seed)
    model_config = roberta_config(c.model, vocab_size, c.max_seq_len, c.dropout)
    model = build_model(model_config).to(dist_.device)
    params = model.num_parameters()
    masker = Masker.from_tokenizer(tokenizer, c.mlm_probability, c.whole_word_masking)
    # Validation always masks like RoBERTa (15% of single tokens), so that runs with other masking
    # recipes report perplexities on the same task and can be compared.
    validation_masker = dataclasses.replace(masker, probability=0.15, whole_word=False)

    def make_batch(indices: list[int], step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.stack([train_data[i] for i in indices])
        return mask_tokens(ids, masker, mask_generator(c.seed, step, micro))

    def validate(module, autocast) -> float:
        return evaluate(module, val, validation_masker, c, dist_, autocast)

    def export(model, out: Path, records: list[dict], stats: dict) -> None:
        from hebrew_lm.mlm.export import export_model

        if val is not None:
            from hebrew_lm.mlm.probe import fill_mask_scores

            stats["fill_mask"] = fill_mask_scores(model, validation_masker, val, train_store)
        export_model(model, tokenizer_dir, out / "model", c, stats)
        if val is not None:
            from hebrew_lm.mlm.probe import PROBE, probe_guesses

            stats["fill_mask"]["probe"] = {"text": PROBE, "guesses": probe_guesses(out / "model")}

    data = TrainingData(len(train_data), train_data.__getitem__, None, validate if val is not None else None)
    return Prepared(MaskedLMObjective(model), data, make_batch, lambda: build_model(model_config), export,
                    stats={"parameters": params, "train_sequences": len(train_data)},
                    describe=f"{c.model} model, {params:,} parameters, {len(train_data)} sequences of {c.max_seq_len} "
                             "tokens", loss_label="training loss (masked positions)")


STAGE = TrainingStage("pretrain", FORMAT_VERSION, prepare, check=check)


def run(config: PretrainConfig, force: bool = False) -> Path:
    """Pretrain into `config.output_dir` and return that folder."""
    return run_training_stage(config, STAGE, force)
