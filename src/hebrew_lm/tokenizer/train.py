"""The tokenizer stage: a Hebrew byte-level BPE tokenizer trained on the corpus, as a Hugging Face folder.

    hebrew-lm tokenizer train configs/tiny.yaml

Output (loads with `AutoTokenizer.from_pretrained(folder)`, no custom code):
    tokenizer.json, tokenizer_config.json, special_tokens_map.json   the tokenizer
    normalization.json       the corpus's Hebrew normalization, also built into tokenizer.json
    stats.json, config.yaml, _SUCCESS
    audit/                   audit of this tokenizer and its baselines (unless audit: false)
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hebrew_lm.config import NormalizeConfig, TokenizerConfig, from_dict, to_dict
from hebrew_lm.corpus.shards import load_manifest, read_texts
from hebrew_lm.runs import (
    atomic_write_json,
    atomic_write_text,
    check_finished,
    dump_yaml,
    fingerprint,
    mark_success,
    clear_owned_dir,
    read_success,
)
from hebrew_lm.text.normalize import hf_normalizer
from hebrew_lm.tokenizer.specials import BOS, EOS, MASK, PAD, SPECIAL_TOKENS, UNK

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1
BATCH = 1000  # texts per batch handed to the trainer, which counts words in parallel over a batch


def corpus_normalization(corpus_dir: Path) -> NormalizeConfig:
    """The normalization the corpus was built with (from its config.yaml)."""
    config = yaml.safe_load((corpus_dir / "config.yaml").read_text(encoding="utf-8"))
    return from_dict(NormalizeConfig, config.get("normalize", {}), f"{corpus_dir / 'config.yaml'}: normalize")


class Sample:
    """The first `max_bytes` of a split's text, streamed in batches; counts what it handed out."""

    def __init__(self, corpus_dir: Path, split: str, max_bytes: int, seed: int) -> None:
        self.corpus_dir, self.split, self.max_bytes, self.seed = corpus_dir, split, max_bytes, seed
        self.documents = 0
        self.bytes = 0

    def batches(self) -> Iterator[list[str]]:
        self.documents = self.bytes = 0
        batch: list[str] = []
        for text in read_texts(self.corpus_dir, self.split, shard_order_seed=self.seed):
            if self.bytes >= self.max_bytes:
                break
            batch.append(text)
            self.documents += 1
            self.bytes += len(text.encode("utf-8"))
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def texts(self) -> Iterator[str]:
        for batch in self.batches():
            yield from batch


# The pre-tokenizer split of GPT-2 and RoBERTa (what `ByteLevel(use_regex=True)` applies): a word with
# its leading space, a number, a run of punctuation, or whitespace.
GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
MAX_ALPHABET = 1000  # characters that get their own token; rarer ones are spelled in bytes


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from the 256 byte values to printable characters ('Ġ' for the space byte, ...)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def train_byte_level_bpe(batches: Iterator[list[str]], vocab_size: int, min_frequency: int,
                         add_prefix_space: bool = False, show_progress: bool = False, char_aligned: bool = True):
    """A `tokenizers.Tokenizer` with RoBERTa's byte-level BPE pipeline, trained on `batches`.

    With `char_aligned` (the default), merges are learned over characters and then written as
    byte-level merges, with the merges that spell each character from its bytes ranked first. Every
    Hebrew letter is two bytes that share a lead byte (0xD7), and plain byte-level BPE learns merges
    across letters ("the end of ה + the start of the next letter") before it has formed every letter:
    on 20 MB of modern Hebrew at 52k, 21% of its vocabulary are such fragments that never stand for
    a whole character. The aligned tokenizer is still a plain byte-level BPE (any byte string encodes,
    `transformers` loads it with no custom code); only the merges differ.

    The text is already normalized, so training runs without a normalizer (it would only repeat the
    work); the caller attaches one afterwards.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if char_aligned:
        char_level = Tokenizer(models.BPE())
        char_level.pre_tokenizer = pre_tokenizers.Split(Regex(GPT2_SPLIT), behavior="isolated")
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[],
            limit_alphabet=max(1, min(MAX_ALPHABET, (vocab_size - 256 - len(SPECIAL_TOKENS)) // 2)),
            show_progress=show_progress,
        )
        if add_prefix_space:
            batches = ([" " + t for t in batch] for batch in batches)
        char_level.train_from_iterator(batches, trainer=trainer)
        tokenizer = Tokenizer(_byte_level_model(json.loads(char_level.to_str())["model"], vocab_size))
        tokenizer.add_special_tokens(SPECIAL_TOKENS)
    else:
        tokenizer = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=show_progress,
        )
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        tokenizer.train_from_iterator(batches, trainer=trainer)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(
        (EOS, SPECIAL_TOKENS.index(EOS)), (BOS, SPECIAL_TOKENS.index(BOS)),
        trim_offsets=True, add_prefix_space=add_prefix_space,
    )
    return tokenizer


def _byte_level_model(char_model: dict[str, Any], vocab_size: int):
    """Turn a character-level BPE (vocab + merges) into the equivalent byte-level BPE: special tokens,
    the 256 bytes, the merges that spell each multi-byte character of the alphabet, then the learned
    merges in their order, cut to `vocab_size`."""
    from tokenizers import models

    b2u = bytes_to_unicode()

    def enc(text: str) -> str:
        return "".join(b2u[b] for b in text.encode("utf-8"))

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for b in range(256):
        vocab.setdefault(b2u[b], len(vocab))
    merges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(left: str, right: str) -> None:
        if (left, right) not in seen:
            seen.add((left, right))
            merges.append((left, right))
            vocab.setdefault(left + right, len(vocab))

    learned = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in char_model["merges"]]
    produced = {a + b for a, b in learned}
    alphabet = sorted((t for t in char_model["vocab"] if len(t) == 1 and t not in produced),
                      key=char_model["vocab"].get)
    for ch in alphabet:
        spelled = enc(ch)
        for k in range(2, len(spelled) + 1):
            add(spelled[: k - 1], spelled[k - 1])
    for a, b in learned:
        if len(vocab) >= vocab_size:
            break
        add(enc(a), enc(b))
    return models.BPE(vocab=vocab, merges=merges)


def save_hf_folder(tokenizer, folder: Path, model_max_length: int) -> None:
    """Wrap a `tokenizers.Tokenizer` for transformers and save it as a Hugging Face folder."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    # as RoBERTa: "word <mask>" masks the next word together with its leading space
    tokenizer.add_special_tokens([AddedToken(MASK, lstrip=True, rstrip=False, special=True, normalized=False)])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS, eos_token=EOS, sep_token=EOS, cls_token=BOS, unk_token=UNK, pad_token=PAD,
        mask_token=MASK,
        model_max_length=model_max_length,
    )
    hf.save_pretrained(str(folder))


def run(config: TokenizerConfig, force: bool = False) -> Path:
    """Train the tokenizer into `config.output_dir` and return that folder."""
    corpus_dir, out = Path(config.corpus_dir), Path(config.output_dir)
    manifest = load_manifest(corpus_dir)  # a clear error unless the corpus stage finished
    fp = fingerprint({"version": FORMAT_VERSION, "config": to_dict(config),
                      "corpus": read_success(corpus_dir).get("fingerprint")})
    if check_finished(out, fp, "tokenizer", force):
        return out
    # Leftovers of a killed run: training starts over (it is minutes).
    clear_owned_dir(out, "tokenizer", "starting the tokenizer over")
    normalization = corpus_normalization(corpus_dir)
    if manifest["splits"]["train"]["documents"] == 0:
        raise ValueError(f"{corpus_dir}: the corpus has no training documents to train a tokenizer on")

    sample = Sample(corpus_dir, "train", config.sample_bytes, config.seed)
    log.info("tokenizer: training %sbyte-level BPE, vocab %d, on up to %.1f MB of %s",
             "character-aligned " if config.char_aligned else "", config.vocab_size, min(config.sample_bytes, manifest["splits"]["train"]["bytes"]) / 1e6, corpus_dir)
    started = time.time()
    tokenizer = train_byte_level_bpe(sample.batches(), config.vocab_size, config.min_frequency,
                                     config.add_prefix_space, show_progress=log.isEnabledFor(logging.INFO),
                                     char_aligned=config.char_aligned)
    seconds = time.time() - started
    if sample.documents == 0:
        raise ValueError(f"{corpus_dir}: the training sample is empty")
    tokenizer.normalizer = hf_normalizer(normalization)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        save_hf_folder(tokenizer, Path(tmp), config.model_max_length)
        for f in Path(tmp).iterdir():
            f.replace(out / f.name)
    atomic_write_json(out / "normalization.json", to_dict(normalization))
    stats: dict[str, Any] = {
        "sample_documents": sample.documents,
        "sample_bytes": sample.bytes,
        "vocab_size": tokenizer.get_vocab_size(),
        "train_seconds": round(seconds, 2),
        "corpus_dir": str(corpus_dir),
    }
    log.info("tokenizer: %d tokens learned from %d documents (%.1f MB) in %.1f s", stats["vocab_size"],
             sample.documents, sample.bytes / 1e6, seconds)
    if config.audit:
        from hebrew_lm.tokenizer.audit import audit_stage_tokenizer

        stats["audit"] = audit_stage_tokenizer(config, out, sample)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "config.yaml", dump_yaml(to_dict(config)))
    mark_success(out, fp, stage="tokenizer")
    log.info("tokenizer: -> %s", out)
    return out


def load_normalization(folder: str | Path) -> NormalizeConfig:
    """The normalization recorded in a tokenizer folder made by this stage."""
    data = json.loads((Path(folder) / "normalization.json").read_text(encoding="utf-8"))
    return from_dict(NormalizeConfig, data, str(Path(folder) / "normalization.json"))
