"""The decoder stage: a mixture-of-experts causal LM pretrained (or continued) on the corpus, on the
same training engine as the encoder.

    hebrew-lm decoder pretrain configs/tiny-decoder.yaml
    hebrew-lm run configs/tiny-decoder.yaml                        # corpus -> tokenizer -> decoder
    torchrun --nproc_per_node 8 -m hebrew_lm decoder pretrain my.yaml --fsdp true

Output folder:
    model/                  the exported Hugging Face model (safetensors, config, generation config,
                            tokenizer, card with total/active parameters and expert load)
    checkpoints/ckpt-STEP/  as the encoder's
    metrics.jsonl           loss, learning rate, tokens/s, max/mean expert load, dead experts, validation
    expert_load.json        per MoE layer, each expert's share of the last steps' tokens (and expert_load.png)
    curves.png, stats.json, config.yaml, _SUCCESS
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hebrew_lm.decoder.config import DecoderConfig
from hebrew_lm.decoder.data import DocumentPieces, pad_batch
from hebrew_lm.decoder.objective import CausalLMObjective
from hebrew_lm.runs import atomic_write_json, sha256_file
from hebrew_lm.engine.token_store import eos_token
from hebrew_lm.engine.dist import Dist
from hebrew_lm.engine.loop import accumulation_steps, evaluate_batches, fixed_batch_indices, train
from hebrew_lm.engine.folder import begin, check_inputs, final_losses, finish, token_stores, training_fingerprint

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


def build_decoder(c: DecoderConfig, vocab_size: int, special_ids: dict[str, int]):
    """The model: `init_from`'s weights, or the preset from random initialization (seeded)."""
    from transformers import AutoModelForCausalLM

    from hebrew_lm.decoder.model import decoder_config

    if c.init_from:
        path = Path(c.init_from)
        if not (path / "config.json").is_file():
            raise ValueError(f"decoder.init_from: {path} is not a Hugging Face model folder (no config.json)")
        config = longer_context(path, c)
        log.info("base %s: max_position_embeddings %s%s", path, config.max_position_embeddings,
                 f", rotary {config.rope_parameters}" if getattr(config, "rope_parameters", None) else "")
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, config=config)
        if model.get_input_embeddings().weight.shape[0] < vocab_size and getattr(c, "ADDS_TOKENS", False):
            # SFT's chat markers: new rows start at the mean of the old ones (transformers' mean resizing)
            model.resize_token_embeddings(vocab_size, mean_resizing=True)
        if model.get_input_embeddings().weight.shape[0] < vocab_size:
            raise ValueError(f"decoder.init_from: {path} has {model.get_input_embeddings().weight.shape[0]} embeddings, "
                             f"fewer than the tokenizer's {vocab_size} tokens")
        return model
    config = decoder_config(c.model, vocab_size, max_position_embeddings=max(4096, c.max_seq_len), **special_ids)
    return AutoModelForCausalLM.from_config(config)


def longer_context(path: Path, c: DecoderConfig):
    """The base's config for a run at `c.max_seq_len`: max_position_embeddings raised to it when longer,
    and `rope_parameters` (cpt) merged into the rotary settings, so the exported config records the
    length and the scaling the model was trained with and plain transformers loads it that way."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    if c.max_seq_len > (getattr(config, "max_position_embeddings", None) or 0):
        config.max_position_embeddings = c.max_seq_len
    rope = getattr(c, "rope_parameters", None)
    if rope:
        if getattr(config, "rope_parameters", None) is None:
            raise ValueError(f"rope_parameters: {path} ({config.model_type}) has no rotary position embedding "
                             "(its attention takes no positions); leave rope_parameters empty")
        config.rope_parameters = {**config.rope_parameters, **rope}
    return config


def evaluate(objective, data: DocumentPieces, c: DecoderConfig, dist_: Dist, pad_id: int, autocast,
             pieces: np.ndarray | None = None, positions: tuple[int, int] | None = None) -> float:
    """Next-token loss on the same validation pieces every time: micro_batch_size x eval_batches of them,
    spread evenly over the split (or over `pieces`, when given), not its first ones, which may all come
    from one source. `positions` (from, to): only the tokens predicted at those positions count."""
    pieces = np.arange(len(data)) if pieces is None else pieces
    wanted = c.micro_batch_size * c.eval_batches
    if len(pieces) > wanted:
        pieces = pieces[np.linspace(0, len(pieces) - 1, wanted).round().astype(np.int64)]

    def batch(idx: list[int]) -> tuple[torch.Tensor, ...]:
        ids, mask = pad_batch([data[int(pieces[i])] for i in idx], pad_id)
        if positions is None:
            return ids, mask
        predicted = torch.zeros_like(mask)
        predicted[:, positions[0]: positions[1]] = 1
        return ids, mask, predicted

    batches = (batch(idx) for idx in fixed_batch_indices(len(pieces), c.micro_batch_size, c.eval_batches))
    return evaluate_batches(objective, batches, dist_, autocast)


@dataclass
class TrainingData:
    """What a causal-LM stage trains on: sequences by id, the order the engine reads them in, and the
    validation. The decoder stage's is one corpus (`corpus_data`); the curriculum's is phases of a Hebrew
    corpus mixed with an anchor corpus (`hebrew_lm.cpt.mixture`)."""

    num_sequences: int
    sequence: Callable[[int], torch.Tensor]
    lengths: np.ndarray
    """Every sequence's length (bucketing, tokens per step)."""
    evaluate: Callable | None
    """(objective, autocast) -> validation loss, or a dict of named losses with `val_loss`."""
    stream: Any = None
    """The engine's order of sequences; None: the shuffled, length-bucketed stream over all of them."""
    describe: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    evaluate_first: bool = False
    """Evaluate before the first step too (a base model's own losses, for forgetting)."""
    summarize: Callable[[Path, list[dict]], dict[str, Any]] | None = None
    """(output folder, metrics records) -> more stats, and any plots it draws there, after training."""
    collate: Callable[[list[int]], tuple[torch.Tensor, ...]] | None = None
    """Sequence ids -> the objective's micro-batch; None: right-padded (ids, attention mask). SFT adds its loss mask."""


def corpus_data(c: DecoderConfig, corpus_dir: Path, tokenizer_dir: Path, dist_: Dist, pad_id: int) -> TrainingData:
    """One corpus's training pieces in a shuffled (length-bucketed) stream; its validation loss."""
    train_store, val_store = token_stores(corpus_dir, tokenizer_dir, c.cache_dir, dist_)
    train_data, val_data = DocumentPieces(train_store, c.max_seq_len), DocumentPieces(val_store, c.max_seq_len)
    if len(train_data) == 0:
        raise ValueError(f"{corpus_dir}: no training document has two tokens or more")

    def validate(module, autocast) -> float:
        return evaluate(module, val_data, c, dist_, pad_id, autocast)

    return TrainingData(len(train_data), train_data.__getitem__, train_data.lengths(),
                        validate if len(val_data) else None,
                        describe=f"{len(train_data)} pieces from {train_data.num_documents} documents",
                        stats={"train_pieces": len(train_data), "train_documents": train_data.num_documents})


def run(config: DecoderConfig, force: bool = False) -> Path:
    """Train the decoder into `config.output_dir` and return that folder."""
    return train_causal_lm(config, "decoder", corpus_data, force)


def train_causal_lm(config: DecoderConfig, stage: str, make_data: Callable[..., TrainingData], force: bool = False,
                    export: Callable[..., Path] | None = None, **inputs: Any) -> Path:
    """A causal-LM training stage: check and fingerprint its inputs (`inputs`: any beyond the corpus,
    tokenizer and base), build the model and `make_data(c, corpus_dir, tokenizer_dir, dist_, pad_id)`,
    train on the engine and export (`export(model, tokenizer_dir, dest, config, stats)`, by default the
    decoder's folder and card). The decoder, curriculum and SFT stages are this with their data."""
    from transformers import AutoTokenizer

    c = config
    dist_ = Dist()
    out = Path(c.output_dir)
    corpus_dir, tokenizer_dir = check_inputs(c)
    init_fp = sha256_file(Path(c.init_from) / "model.safetensors") if c.init_from and \
        (Path(c.init_from) / "model.safetensors").is_file() else c.init_from
    config_fp = training_fingerprint(c, FORMAT_VERSION, corpus_dir, tokenizer_dir, dist_, init_from=init_fp, **inputs)
    if c.init_from and (Path(c.init_from) / "config.json").is_file():
        longer_context(Path(c.init_from), c)  # a setting the base cannot take fails before the output folder is claimed
    if begin(c, stage, config_fp, dist_, force):
        return out
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    eos = tokenizer.convert_tokens_to_ids(eos_token(tokenizer_dir))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    data = make_data(c, corpus_dir, tokenizer_dir, dist_, pad_id)
    accum = accumulation_steps(c, dist_, stage)

    torch.manual_seed(c.seed)
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": eos, "pad_token_id": pad_id}
    model = build_decoder(c, len(tokenizer), special).to(dist_.device)
    if c.gradient_checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    objective = CausalLMObjective(model, chunk_tokens=c.chunk_tokens, balance_rate=c.balance_rate)
    from hebrew_lm.decoder.model import parameter_counts

    counts = parameter_counts(model.config)

    def make_batch(indices: list[int], step: int, micro: int) -> tuple[torch.Tensor, ...]:
        return data.collate(indices) if data.collate else pad_batch([data.sequence(i) for i in indices], pad_id)

    mean_len = float(data.lengths.mean())
    if dist_.main:
        log.info("%s: %s, %s parameters (%s active per token), %s of %.0f tokens on average; global batch %d = %d x "
                 "%d processes x %d accumulation; %d steps", stage, c.init_from or c.model, f"{counts.total:,}",
                 f"{counts.active:,}", data.describe, mean_len, c.global_batch_size, c.micro_batch_size, dist_.world,
                 accum, c.max_steps)
    result = train(c, objective, make_batch, data.num_sequences, out, config_fp, dist_, data.evaluate, stage=stage,
                   tokens_per_sequence=math.ceil(mean_len), stream=data.stream, evaluate_first=data.evaluate_first,
                   sequence_lengths=data.lengths if c.length_bucketing else None)
    if dist_.main:
        from hebrew_lm.decoder.export import export_decoder, plot_expert_load
        from hebrew_lm.engine.export import plot_curves

        if result.sharding == "fsdp":  # export from a plain copy holding the gathered weights
            model = build_decoder(c, len(tokenizer), special)
            model.load_state_dict(result.model_state, strict=False)
        records, losses = final_losses(out)
        load = [r for r in records if "max_over_mean_load" in r]
        stats = {"parameters": counts.total, "active_parameters": counts.active, "steps": result.state["step"],
                 "tokens_seen": result.state["tokens_seen"], "spikes": result.state["spikes"],
                 **data.stats,
                 "wall_seconds": round(result.seconds, 1), "processes": dist_.world, "gradient_accumulation": accum,
                 "sharding": result.sharding, "balancing": objective.balancing(), **losses,
                 "final_max_over_mean_load": load[-1]["max_over_mean_load"] if load else None}
        if data.summarize:
            stats.update(data.summarize(out, records))
        atomic_write_json(out / "expert_load.json", [row.tolist() for row in objective.last_load])
        plot_expert_load(objective.last_load, out / "expert_load.png")
        (export or export_decoder)(model, tokenizer_dir, out / "model", c, stats)
        plot_curves(records, out / "curves.png", loss_label="training loss (next token)")
        finish(c, stage, config_fp, stats)
        log.info("%s: -> %s", stage, out / "model")
    dist_.barrier()
    return out
