"""Token stores: a corpus split tokenized once into a memory-mapped array of token ids, each document
followed by the tokenizer's end-of-sequence token.

    store = build_token_store("runs/tiny/corpus", "runs/tiny/tokenizer", "train", "runs/tiny/cache")
    tokens = load_tokens(store)                      # np.memmap of uint16 (or uint32 for large vocabularies)

The store's folder is named by a hash of the corpus and tokenizer that made it (cramming's habit), so a
store built from another corpus or tokenizer is never reused by mistake. Special-token strings inside
the text (`<mask>`, `</s>`...) are encoded as text. The masked LM packs a store into fixed-length
sequences (`hebrew_lm.mlm.data`); the causal LM cuts it at its document ends (`hebrew_lm.decoder.data`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hebrew_lm.corpus.shards import load_manifest, read_texts
from hebrew_lm.runs import atomic_write_json, claim_output_dir, fingerprint, is_finished, mark_success, read_success, sha256_file
from hebrew_lm.tokenizer.specials import EOS

BATCH = 512


def eos_token(tokenizer_dir: Path) -> str:
    """The tokenizer's own end-of-sequence token (tokenizer_config.json), else RoBERTa's `</s>`."""
    path = Path(tokenizer_dir) / "tokenizer_config.json"
    token = json.loads(path.read_text(encoding="utf-8")).get("eos_token") if path.is_file() else None
    if isinstance(token, dict):  # older transformers saved AddedToken mappings
        token = token.get("content")
    return token or EOS


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
    eos_name = eos_token(tokenizer_dir)
    eos = tokenizer.token_to_id(eos_name)
    if eos is None:
        raise ValueError(f"{tokenizer_dir}: its end-of-sequence token {eos_name!r} is not in its vocabulary")
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
    atomic_write_json(out / "meta.json", {"dtype": np.dtype(dtype).name, "num_tokens": num_tokens, "eos_id": eos,
                                          "num_documents": num_docs, "vocab_size": vocab_size, "split": split,
                                          "corpus_dir": str(corpus_dir), "tokenizer_dir": str(tokenizer_dir)})
    mark_success(out, out.name, stage="token store")
    return out


def load_tokens(store: str | Path) -> np.ndarray:
    meta = json.loads((Path(store) / "meta.json").read_text(encoding="utf-8"))
    return np.memmap(Path(store) / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(meta["num_tokens"],))
