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
from hebrew_lm.engine.loop import accumulation_steps, evaluate_batches, fixed_batch_indices, train
from hebrew_lm.engine.folder import begin, check_inputs, final_losses, finish, token_stores, training_fingerprint

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


def run(config: PretrainConfig, force: bool = False) -> Path:
    """Pretrain into `config.output_dir` and return that folder."""
    from tokenizers import Tokenizer

    c = config
    dist_ = Dist()
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = check_inputs(c)
    positions = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get(
        "model_max_length", c.max_seq_len) if (tokenizer_dir / "tokenizer_config.json").is_file() else c.max_seq_len
    if c.max_seq_len > positions:
        raise ValueError(f"pretrain.max_seq_len is {c.max_seq_len}, more than the {positions} positions the tokenizer "
                         f"declares (model_max_length in {tokenizer_dir / 'tokenizer_config.json'}); lower max_seq_len, "
                         f"or train the tokenizer with a larger tokenizer.model_max_length")
    config_fp = training_fingerprint(c, FORMAT_VERSION, corpus_dir, tokenizer_dir, dist_)
    if begin(c, "pretrain", config_fp, dist_, force):
        return out
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    vocab_size = tokenizer.get_vocab_size()
    train_store, val_store = token_stores(corpus_dir, tokenizer_dir, c.cache_dir, dist_)
    train_data = PackedSequences(train_store, c.max_seq_len)
    has_val = json.loads((val_store / "meta.json").read_text())["num_tokens"] >= c.max_seq_len
    val = PackedSequences(val_store, c.max_seq_len) if has_val else None
    accum = accumulation_steps(c, dist_, "pretrain")
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
    objective = MaskedLMObjective(model)

    def make_batch(indices: list[int], step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.stack([train_data[i] for i in indices])
        return mask_tokens(ids, masker, mask_generator(c.seed, step, micro))

    def validate(module, autocast) -> float:
        return evaluate(module, val, validation_masker, c, dist_, autocast)

    if dist_.main:
        log.info("pretrain: %s model, %s parameters, %d sequences of %d tokens; global batch %d = %d x %d "
                 "processes x %d accumulation; %d steps", c.model, f"{params:,}", len(train_data), c.max_seq_len,
                 c.global_batch_size, c.micro_batch_size, dist_.world, accum, c.max_steps)
    result = train(c, objective, make_batch, len(train_data), out, config_fp, dist_,
                   validate if val is not None else None, stage="pretrain")
    state, final_state, fsdp = result.state, result.model_state, result.sharding == "fsdp"
    if dist_.main:
        from hebrew_lm.mlm.export import export_model
        from hebrew_lm.engine.export import plot_curves

        if fsdp:  # export from a plain copy holding the gathered weights
            model = build_model(model_config)
            model.load_state_dict(final_state, strict=False)

        stats = {"parameters": params, "steps": state["step"], "tokens_seen": state["tokens_seen"],
                 "spikes": state["spikes"], "train_sequences": len(train_data),
                 "wall_seconds": round(result.seconds, 1), "processes": dist_.world,
                 "gradient_accumulation": accum, "sharding": result.sharding}
        records, losses = final_losses(out)
        stats.update(losses)
        if val is not None:
            from hebrew_lm.mlm.probe import fill_mask_scores

            stats["fill_mask"] = fill_mask_scores(model, validation_masker, val, train_store)
        export_model(model, tokenizer_dir, out / "model", c, stats)
        if val is not None:
            from hebrew_lm.mlm.probe import PROBE, probe_guesses

            stats["fill_mask"]["probe"] = {"text": PROBE, "guesses": probe_guesses(out / "model")}
        plot_curves(records, out / "curves.png")
        finish(c, "pretrain", config_fp, stats)
        log.info("pretrain: -> %s", out / "model")
    dist_.barrier()
    return out
