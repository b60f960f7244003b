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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hebrew_lm.decoder.config import DecoderConfig
from hebrew_lm.decoder.data import DocumentPieces, base_bos, pad_batch
from hebrew_lm.decoder.objective import CausalLMObjective
from hebrew_lm.runs import atomic_write_json, sha256_file
from hebrew_lm.engine.token_store import eos_token
from hebrew_lm.engine.dist import Dist
from hebrew_lm.engine.folder import token_stores
from hebrew_lm.engine.loop import evaluate_batches, fixed_batch_indices
from hebrew_lm.engine.runner import Prepared, TrainingData, TrainingStage, run_training_stage

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1


def build_decoder(c: DecoderConfig, tokenizer, special_ids: dict[str, int]):
    """The model: `init_from`'s weights, or the preset from random initialization (seeded). A stage that adds
    tokens to the base's tokenizer (`NEW_ROWS_LIKE`) grows the base's embeddings for them."""
    from transformers import AutoModelForCausalLM

    from hebrew_lm.tokenizer.extend import embedding_rows, grow_embeddings

    if c.init_from:
        path = Path(c.init_from)
        if not (path / "config.json").is_file():
            raise ValueError(f"decoder.init_from: {path} is not a Hugging Face model folder (no config.json)")
        config = longer_context(path, c)
        log.info("base %s: max_position_embeddings %s%s", path, config.max_position_embeddings,
                 f", rotary {config.rope_parameters}" if getattr(config, "rope_parameters", None) else "")
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, config=config)
        if hasattr(c, "NEW_ROWS_LIKE"):
            grow_embeddings(model, tokenizer, c.NEW_ROWS_LIKE, tokenizer_size(path, model))
        if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
            raise ValueError(f"decoder.init_from: {path} has {model.get_input_embeddings().weight.shape[0]} embeddings, "
                             f"fewer than the tokenizer's {len(tokenizer)} tokens")
        return model
    return preset_decoder(c, embedding_rows(len(tokenizer)), special_ids)


def preset_decoder(c: DecoderConfig, rows: int, special_ids: dict[str, int]):
    """The preset `c.model` from random initialization (seeded by the caller), with `rows` embeddings."""
    from transformers import AutoModelForCausalLM

    from hebrew_lm.decoder.model import decoder_config

    config = decoder_config(c.model, rows, max_position_embeddings=max(4096, c.max_seq_len), **special_ids)
    return AutoModelForCausalLM.from_config(config)


def tokenizer_size(folder: Path, model) -> int:
    """Tokens of the tokenizer in a base's folder (its embedding rows when it has none)."""
    from transformers import AutoTokenizer

    if (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file():
        return len(AutoTokenizer.from_pretrained(str(folder)))
    return model.get_input_embeddings().weight.shape[0]


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
             pieces: np.ndarray | None = None, positions: tuple[int, int] | None = None,
             text_bytes: Callable[[DocumentPieces, int], int] | None = None, batches: int = 0,
             totals: list | None = None) -> float | tuple[float, float]:
    """Next-token loss on the same validation pieces every time: micro_batch_size x eval_batches of them,
    spread evenly over the split (or over `pieces`, when given), not its first ones, which may all come
    from one source. `positions` (from, to): only the tokens predicted at those positions count.
    With `text_bytes` ((pieces, index) -> the UTF-8 bytes of that piece's text), also bits per byte on the same pieces:
    their summed next-token loss in bits over the bytes of their text, the measure that compares models
    with different tokenizers (base against extended vocabulary, one family against another).
    `batches`: this many micro-batches instead of eval_batches; `totals`, when given, receives this process's
    (bits, bytes, predicted tokens), so scores of disjoint pieces can be pooled."""
    pieces = np.arange(len(data)) if pieces is None else pieces
    batches = batches or c.eval_batches
    wanted = c.micro_batch_size * batches
    if len(pieces) > wanted:
        pieces = pieces[np.linspace(0, len(pieces) - 1, wanted).round().astype(np.int64)]

    def batch(idx: list[int]) -> tuple[torch.Tensor, ...]:
        ids, mask = pad_batch([data[int(pieces[i])] for i in idx], pad_id)
        if positions is None:
            return ids, mask
        predicted = torch.zeros_like(mask)
        predicted[:, positions[0]: positions[1]] = 1
        return ids, mask, predicted

    # a split smaller than a batch wraps around; each piece once in its batch
    indices = [list(dict.fromkeys(idx)) for idx in fixed_batch_indices(len(pieces), c.micro_batch_size, batches)]
    if text_bytes is None:
        return evaluate_batches(objective, (batch(idx) for idx in indices), dist_, autocast)
    each: list[float] = []
    loss = evaluate_batches(objective, (batch(idx) for idx in indices), dist_, autocast, each)
    lengths = data.lengths()
    predicted = [sum(int(lengths[pieces[i]]) - 1 for i in idx) for idx in indices]  # each batch's scored tokens
    nbytes = sum(text_bytes(data, int(pieces[i])) for idx in indices for i in idx)
    bits = sum(b * n for b, n in zip(each, predicted)) / math.log(2)
    if totals is not None:
        totals.extend([bits, nbytes, sum(predicted)])
    return loss, dist_.mean(bits / max(nbytes, 1))


def text_bytes_of(tokenizer_dir: Path) -> Callable[[DocumentPieces, int], int]:
    """(pieces, index) -> the UTF-8 bytes of the text that piece spells (special tokens left out), decoded
    once per piece: validation scores the same pieces every time. A piece cut inside a character counts
    that character whole: an error of a byte or two a cut."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    seen: dict[tuple[int, int], int] = {}  # by (id of the pieces, index): they live as long as the run

    def count(data: DocumentPieces, i: int) -> int:
        key = (id(data), i)
        if key not in seen:
            seen[key] = len(tokenizer.decode(data[i].tolist(), skip_special_tokens=True).encode("utf-8"))
        return seen[key]

    return count


def corpus_data(c: DecoderConfig, corpus_dir: Path, tokenizer_dir: Path, dist_: Dist, pad_id: int) -> TrainingData:
    """One corpus's training pieces in a shuffled (length-bucketed) stream; its validation loss."""
    train_store, val_store = token_stores(corpus_dir, tokenizer_dir, c.cache_dir, dist_)
    # continuing a base: documents start as the base starts a text (none from scratch: our tokenizer's <s>
    # is for the encoder's packed sequences)
    bos = base_bos(tokenizer_dir) if c.init_from else None
    train_data = DocumentPieces(train_store, c.max_seq_len, bos=bos)
    val_data = DocumentPieces(val_store, c.max_seq_len, bos=bos)
    if len(train_data) == 0:
        raise ValueError(f"{corpus_dir}: no training document has two tokens or more")

    def validate(module, autocast) -> float:
        return evaluate(module, val_data, c, dist_, pad_id, autocast)

    return TrainingData(len(train_data), train_data.__getitem__, train_data.lengths(),
                        validate if len(val_data) else None,
                        describe=f"{len(train_data)} pieces from {train_data.num_documents} documents",
                        stats={"train_pieces": len(train_data), "train_documents": train_data.num_documents})


def causal_lm_stage(name: str, make_data: Callable[..., TrainingData], export: Callable[..., Path] | None = None,
                    objective: Callable[..., torch.nn.Module] | None = None,
                    inputs: Callable[[Any], dict[str, Any]] | None = None) -> TrainingStage:
    """A causal-LM training stage on the engine: the base (`init_from`) or a preset from scratch, trained on
    `make_data(c, corpus_dir, tokenizer_dir, dist_, pad_id)` with `objective(model, c)` (default: the chunked
    next-token loss with router balancing), exported by `export(model, tokenizer_dir, dest, config, stats)`
    (default: the decoder's folder and card). The decoder, curriculum and SFT stages are this with their data;
    `inputs(c)` adds what else their checkpoints depend on to the fingerprint (the base's weights always)."""

    def fingerprint_inputs(c) -> dict[str, Any]:
        init = Path(c.init_from) / "model.safetensors" if c.init_from else None
        return {"init_from": sha256_file(init) if init and init.is_file() else c.init_from,
                **(inputs(c) if inputs else {})}

    def check(c, tokenizer_dir: Path) -> None:
        if c.init_from and (Path(c.init_from) / "config.json").is_file():
            longer_context(Path(c.init_from), c)  # a setting the base cannot take fails before the folder is claimed

    def prepare(c, corpus_dir: Path, tokenizer_dir: Path, dist_: Dist) -> Prepared:
        from transformers import AutoTokenizer

        from hebrew_lm.decoder.model import parameter_counts

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        eos = tokenizer.convert_tokens_to_ids(eos_token(tokenizer_dir))
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        data = make_data(c, corpus_dir, tokenizer_dir, dist_, pad_id)
        torch.manual_seed(c.seed)
        special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": eos, "pad_token_id": pad_id}
        model = build_decoder(c, tokenizer, special).to(dist_.device)
        if c.gradient_checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
        loss = (objective or default_objective)(model, c)
        counts = parameter_counts(model.config)

        def make_batch(indices: list[int], step: int, micro: int) -> tuple[torch.Tensor, ...]:
            return data.collate(indices) if data.collate else pad_batch([data.sequence(i) for i in indices], pad_id)

        def write(model, out: Path, records: list[dict], stats: dict) -> None:
            from hebrew_lm.decoder.export import export_decoder, plot_expert_load

            load = [r for r in records if "max_over_mean_load" in r]
            stats.update(balancing=loss.balancing(), final_max_over_mean_load=load[-1]["max_over_mean_load"] if load
                         else None)
            atomic_write_json(out / "expert_load.json", [row.tolist() for row in loss.last_load])
            plot_expert_load(loss.last_load, out / "expert_load.png")
            (export or export_decoder)(model, tokenizer_dir, out / "model", c, stats)

        mean_len = float(data.lengths.mean())
        return Prepared(loss, data, make_batch, lambda: build_decoder(c, tokenizer, special), write,
                        stats={"parameters": counts.total, "active_parameters": counts.active},
                        describe=f"{c.init_from or c.model}, {counts.total:,} parameters ({counts.active:,} active per "
                                 f"token), {data.describe} of {mean_len:.0f} tokens on average",
                        tokens_per_sequence=math.ceil(mean_len), length_bucketing=c.length_bucketing,
                        loss_label="training loss (next token)")

    return TrainingStage(name, FORMAT_VERSION, prepare, check=check, inputs=fingerprint_inputs)


def default_objective(model, c: DecoderConfig) -> CausalLMObjective:
    return CausalLMObjective(model, chunk_tokens=c.chunk_tokens, balance_rate=c.balance_rate)


STAGE = causal_lm_stage("decoder", corpus_data)


def run(config: DecoderConfig, force: bool = False) -> Path:
    """Train the decoder into `config.output_dir` and return that folder."""
    return run_training_stage(config, STAGE, force)
