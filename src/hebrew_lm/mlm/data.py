"""Pretraining data: a corpus split tokenized once into a memory-mapped token store, and RoBERTa's
FULL-SENTENCES packing of it into fixed-length sequences with no padding.

    store = build_token_store("runs/tiny/corpus", "runs/tiny/tokenizer", "train", "runs/tiny/cache")
    data = PackedSequences(store, max_seq_len=512)     # data[i]: <s> + 510 tokens + </s>

The store's folder is named by a hash of the corpus and tokenizer that made it (cramming's habit), so a
store built from another corpus or tokenizer is never reused by mistake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hebrew_lm.corpus.shards import load_manifest, read_texts
from hebrew_lm.runs import atomic_write_json, claim_output_dir, fingerprint, is_finished, mark_success, read_success, sha256_file
from hebrew_lm.tokenizer.specials import BOS, EOS, SPECIAL_TOKENS

BATCH = 512


def token_store_name(corpus_dir: Path, tokenizer_dir: Path, split: str) -> str:
    corpus_fp = read_success(corpus_dir).get("fingerprint")
    tokenizer_fp = sha256_file(tokenizer_dir / "tokenizer.json")
    # "literal-specials": stores since user text's `<mask>`, `</s>`... became text, not special ids.
    return f"tokens-{split}-{fingerprint([corpus_fp, tokenizer_fp, split, 'literal-specials'])[:12]}"


def build_token_store(corpus_dir: str | Path, tokenizer_dir: str | Path, split: str, cache_dir: str | Path) -> Path:
    """Tokenize one split of the corpus (each document followed by </s>) into cache_dir, once."""
    from tokenizers import Tokenizer

    corpus_dir, tokenizer_dir, cache_dir = Path(corpus_dir), Path(tokenizer_dir), Path(cache_dir)
    manifest = load_manifest(corpus_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise ValueError(f"{tokenizer_dir} has no tokenizer.json; train one with `hebrew-lm tokenizer train`")
    claim_output_dir(cache_dir, "token cache", "cache_dir")
    out = cache_dir / token_store_name(corpus_dir, tokenizer_dir, split)
    if is_finished(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    # Web text quotes `<mask>`, `</s>`...: as user text they are characters, never special-token ids.
    tokenizer.encode_special_tokens = True
    vocab_size = tokenizer.get_vocab_size()
    dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32
    eos = tokenizer.token_to_id(EOS)
    total = manifest["splits"].get(split, {}).get("documents", 0)
    num_tokens = num_docs = 0
    tmp = out / "tokens.bin.tmp"
    with open(tmp, "wb") as f, tqdm(total=total, unit="doc", desc=f"tokenizing {split}", disable=None) as bar:
        batch: list[str] = []

        def flush() -> None:
            nonlocal num_tokens, num_docs
            for enc in tokenizer.encode_batch(batch, add_special_tokens=False):
                ids = np.asarray(enc.ids + [eos], dtype=dtype)
                f.write(ids.tobytes())
                num_tokens += len(ids)
            num_docs += len(batch)
            bar.update(len(batch))
            batch.clear()

        for text in read_texts(corpus_dir, split):
            batch.append(text)
            if len(batch) == BATCH:
                flush()
        if batch:
            flush()
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / "tokens.bin")
    atomic_write_json(out / "meta.json", {"dtype": np.dtype(dtype).name, "num_tokens": num_tokens,
                                          "num_documents": num_docs, "vocab_size": vocab_size, "split": split,
                                          "corpus_dir": str(corpus_dir), "tokenizer_dir": str(tokenizer_dir)})
    mark_success(out, out.name, stage="token store")
    return out


def load_tokens(store: str | Path) -> np.ndarray:
    meta = json.loads((Path(store) / "meta.json").read_text(encoding="utf-8"))
    return np.memmap(Path(store) / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(meta["num_tokens"],))


class PackedSequences(torch.utils.data.Dataset):
    """Consecutive runs of `max_seq_len - 2` tokens, each wrapped in <s> ... </s>. Documents follow each
    other across sequence boundaries, separated by </s> (RoBERTa's FULL-SENTENCES); the last partial
    run is dropped, so no position is padding."""

    def __init__(self, store: str | Path, max_seq_len: int) -> None:
        self.tokens = load_tokens(store)
        self.span = max_seq_len - 2
        if self.span < 1:
            raise ValueError(f"max_seq_len must be at least 3, got {max_seq_len}")
        if len(self.tokens) < self.span:
            raise ValueError(
                f"{store}: {len(self.tokens):,} tokens are fewer than one sequence of {max_seq_len}; "
                f"use a larger corpus or a smaller max_seq_len"
            )
        self.bos, self.eos = SPECIAL_TOKENS.index(BOS), SPECIAL_TOKENS.index(EOS)

    def __len__(self) -> int:
        return len(self.tokens) // self.span

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self):
            raise IndexError(i)
        body = torch.from_numpy(self.tokens[i * self.span : (i + 1) * self.span].astype(np.int64))
        return torch.cat([torch.tensor([self.bos]), body, torch.tensor([self.eos])])
