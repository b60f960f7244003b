"""The pretraining stage: a RoBERTa masked-LM encoder trained from scratch on the Hebrew corpus.

    hebrew-lm pretrain configs/tiny.yaml                             # one CPU process
    torchrun --nproc_per_node 8 -m hebrew_lm pretrain configs/hallelubert-base.yaml   # DDP

The masked LM is one objective on the shared training engine (`hebrew_lm.train`): this module builds
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

from hebrew_lm.config import PretrainConfig, to_dict
from hebrew_lm.corpus.shards import load_manifest
from hebrew_lm.mlm.data import PackedSequences, build_token_store
from hebrew_lm.mlm.masking import Masker, mask_tokens
from hebrew_lm.mlm.model import MaskedLMObjective, build_model, roberta_config
from hebrew_lm.runs import (
    atomic_write_json,
    atomic_write_text,
    check_finished,
    claim_output_dir,
    clear_owned_dir,
    dump_yaml,
    fingerprint,
    is_finished,
    mark_success,
    read_success,
    sha256_file,
)
from hebrew_lm.train.dist import Dist
from hebrew_lm.train.loop import accumulation_steps, train
from hebrew_lm.train.metrics import read_metrics

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


def mask_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """Masking depends only on (seed, step, global micro-batch), so a resumed or re-sharded run masks alike."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 65_537 + micro)


@torch.no_grad()
def evaluate(objective, data: PackedSequences, masker: Masker, c: PretrainConfig, dist_: Dist, autocast) -> float:
    """Mean masked-LM loss on fixed validation batches, masked the same way every time. Goes through
    the root module (`objective`), whose forward gathers parameters under FSDP."""
    objective.eval()
    losses = []
    n = min(c.eval_batches, max(1, len(data) // c.micro_batch_size))
    for b in range(n):
        idx = [(b * c.micro_batch_size + i) % len(data) for i in range(c.micro_batch_size)]
        ids = torch.stack([data[i] for i in idx])
        inputs, labels = mask_tokens(ids, masker, mask_generator(c.seed + 7919, 0, b))
        inputs, labels = inputs.to(dist_.device), labels.to(dist_.device)
        with autocast():
            losses.append(objective(inputs, labels).item())
    objective.train()
    return dist_.mean(sum(losses) / len(losses))


def run(config: PretrainConfig, force: bool = False) -> Path:
    """Pretrain into `config.output_dir` and return that folder."""
    from tokenizers import Tokenizer

    c = config
    dist_ = Dist()
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = Path(c.corpus_dir), Path(c.tokenizer_dir)
    claim_output_dir(c.cache_dir, "token cache", "cache_dir")  # before anything else: a bad cache_dir fails fast
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise ValueError(f"{tokenizer_dir} has no tokenizer.json; train one with `hebrew-lm tokenizer train`")
    load_manifest(corpus_dir)  # a clear error unless the corpus stage finished
    positions = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get(
        "model_max_length", c.max_seq_len) if (tokenizer_dir / "tokenizer_config.json").is_file() else c.max_seq_len
    if c.max_seq_len > positions:
        raise ValueError(f"pretrain.max_seq_len is {c.max_seq_len}, more than the {positions} positions the tokenizer "
                         f"declares (model_max_length in {tokenizer_dir / 'tokenizer_config.json'}); lower max_seq_len, "
                         f"or train the tokenizer with a larger tokenizer.model_max_length")
    config_fp = fingerprint({"version": FORMAT_VERSION, "config": {k: v for k, v in to_dict(c).items() if k != "resume"},
                             "corpus": read_success(corpus_dir).get("fingerprint"),
                             "tokenizer": sha256_file(tokenizer_dir / "tokenizer.json"), "world": dist_.world})
    # Rank 0 decides (and with --force removes the old run); the others follow after the barrier.
    done = check_finished(out, config_fp, "pretrain", force) if dist_.main else False
    dist_.barrier()
    if done or (not dist_.main and is_finished(out)):
        return out
    if dist_.main:
        claim_output_dir(out, "pretrain")
        if c.resume == "never":
            clear_owned_dir(out, "pretrain", "resume is never")
        (out / "checkpoints").mkdir(exist_ok=True)
    dist_.barrier()

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    vocab_size = tokenizer.get_vocab_size()
    if dist_.main:  # tokenize once; the other processes then find the stores finished
        for split in ("train", "validation"):
            build_token_store(corpus_dir, tokenizer_dir, split, c.cache_dir)
    dist_.barrier()
    train_store = build_token_store(corpus_dir, tokenizer_dir, "train", c.cache_dir)
    val_store = build_token_store(corpus_dir, tokenizer_dir, "validation", c.cache_dir)
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
        from hebrew_lm.mlm.export import export_model, plot_curves

        if fsdp:  # export from a plain copy holding the gathered weights
            model = build_model(model_config)
            model.load_state_dict(final_state, strict=False)

        stats = {"parameters": params, "steps": state["step"], "tokens_seen": state["tokens_seen"],
                 "spikes": state["spikes"], "train_sequences": len(train_data),
                 "wall_seconds": round(result.seconds, 1), "processes": dist_.world,
                 "gradient_accumulation": accum, "sharding": result.sharding}
        records = read_metrics(out / "metrics.jsonl")
        stats["final_loss"] = next((r["loss"] for r in reversed(records) if "loss" in r and "event" not in r), None)
        stats["final_val_loss"] = next((r["val_loss"] for r in reversed(records) if "val_loss" in r), None)
        export_model(model, tokenizer_dir, out / "model", c, stats)
        plot_curves(records, out / "curves.png")
        atomic_write_json(out / "stats.json", stats)
        atomic_write_text(out / "config.yaml", dump_yaml(to_dict(c)))
        mark_success(out, config_fp, stage="pretrain")
        log.info("pretrain: -> %s", out / "model")
    dist_.barrier()
    return out
