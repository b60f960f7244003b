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

from hebrew_lm.config import from_dict, to_dict
from hebrew_lm.text.normalize import NormalizeConfig
from hebrew_lm.tokenizer.config import TokenizerConfig
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
from hebrew_lm.tokenizer.bpe import train_byte_level_bpe
from hebrew_lm.tokenizer.specials import BOS, EOS, MASK, PAD, UNK

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
