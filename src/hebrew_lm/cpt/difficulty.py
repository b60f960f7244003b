"""Document difficulty scores for the curriculum: each a function of a document's text (higher = harder),
computed once per corpus split and kept in the token cache (never in the corpus stage's folder, which
that stage owns), one row per document in the corpus's order.

    scores = difficulty_scores(corpus_dir, "train", cache_dir)    # {"compression_ratio": array, ...}

Pretraining-curriculum studies found compression ratio, lexical diversity and readability usable as
difficulty signals; which of them agree on Hebrew is measured (`agreement`) and reported, not assumed.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from hebrew_lm.cpt.config import MODEL_SCORERS, TEXT_SCORERS
from hebrew_lm.runs import atomic_write_json, fingerprint, is_finished, mark_success, read_success

WORD = re.compile(r"\w+")
MATTR_WINDOW = 50


def compression_ratio(text: str) -> float:
    """zlib-compressed bytes over raw bytes: repetitive, formulaic text compresses well (easy); varied text
    does not (hard)."""
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / max(1, len(raw))


def lexical_diversity(text: str) -> float:
    """Moving-average type/token ratio over windows of 50 words (MATTR: unlike plain type/token ratio,
    it does not fall with document length)."""
    words = WORD.findall(text)
    if len(words) <= MATTR_WINDOW:
        return len(set(words)) / max(1, len(words))
    counts = Counter(words[:MATTR_WINDOW])
    total = len(counts)
    for i in range(MATTR_WINDOW, len(words)):
        counts[words[i]] += 1
        gone = words[i - MATTR_WINDOW]
        counts[gone] -= 1
        if counts[gone] == 0:
            del counts[gone]
        total += len(counts)
    return total / (len(words) - MATTR_WINDOW + 1) / MATTR_WINDOW


def mean_word_length(text: str) -> float:
    """Mean letters per word: a readability proxy (long words are rarer and more morphologically loaded)."""
    words = WORD.findall(text)
    return sum(map(len, words)) / max(1, len(words))


SCORERS = {"compression_ratio": compression_ratio, "lexical_diversity": lexical_diversity,
           "mean_word_length": mean_word_length}
"""Per-document scorers; `rare_word_rate` needs the whole split's word counts and is added beside them."""
ALL_SCORERS = TEXT_SCORERS  # the names the config declares, each implemented here
assert ALL_SCORERS == (*SCORERS, "rare_word_rate") and MODEL_SCORERS == ("base_loss",)


def rare_word_rates(texts: list[str], common: int = 5000) -> np.ndarray:
    """Share of each document's words outside the split's `common` most frequent words."""
    counts = Counter(w for t in texts for w in WORD.findall(t))
    frequent = {w for w, _ in counts.most_common(common)}
    rates = []
    for t in texts:
        words = WORD.findall(t)
        rates.append(sum(w not in frequent for w in words) / max(1, len(words)))
    return np.asarray(rates)


def difficulty_scores(corpus_dir: str | Path, split: str, cache_dir: str | Path) -> dict[str, np.ndarray]:
    """Every scorer over every document of a split (in the corpus's order), computed once into cache_dir."""
    import pyarrow.parquet as pq

    from hebrew_lm.corpus.shards import load_manifest
    from hebrew_lm.runs import claim_output_dir

    corpus_dir, cache_dir = Path(corpus_dir), Path(cache_dir)
    manifest = load_manifest(corpus_dir)
    claim_output_dir(cache_dir, "token cache", "cache_dir")
    out = cache_dir / f"difficulty-{split}-{fingerprint([read_success(corpus_dir).get('fingerprint'), split, ALL_SCORERS])[:12]}"
    if not is_finished(out):
        out.mkdir(parents=True, exist_ok=True)
        texts, sources = [], []
        for shard in manifest["splits"].get(split, {}).get("shards", []):
            table = pq.read_table(corpus_dir / shard["file"], columns=["text", "source"]).to_pydict()
            texts += table["text"]
            sources += table["source"]
        scores = {name: [fn(t) for t in texts] for name, fn in SCORERS.items()}
        scores["rare_word_rate"] = rare_word_rates(texts).tolist()
        atomic_write_json(out / "scores.json", {"source": sources, **scores})
        mark_success(out, out.name, stage="difficulty scores")
    data = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    return {k: (v if k == "source" else np.asarray(v, dtype=np.float64)) for k, v in data.items()}


def base_loss_scores(store: str | Path, base_dir: str | Path, cache_dir: str | Path, num_documents: int,
                     max_tokens: int = 256, batch: int = 16) -> np.ndarray:
    """Each document's mean next-token loss under the base model, over its first `max_tokens` tokens of the
    token `store` (NaN for a document too short to predict anything). Computed in batches and saved every
    512 documents into cache_dir, so a killed run resumes where it stopped; computed once per (store, base)."""
    import torch
    from transformers import AutoModelForCausalLM

    from hebrew_lm.decoder.data import DocumentPieces, base_bos, pad_batch
    from hebrew_lm.decoder.objective import chunked_causal_lm_loss
    from hebrew_lm.runs import sha256_file

    store, base_dir = Path(store), Path(base_dir)
    weights = sorted(base_dir.glob("*.safetensors"))
    bos = base_bos(base_dir)  # each document starts as the base starts a text
    key = [store.name, max_tokens, [sha256_file(w) for w in weights], *([{"bos": bos}] if bos is not None else [])]
    out = Path(cache_dir) / f"difficulty-base_loss-{fingerprint(key)[:12]}"
    if is_finished(out):
        return np.load(out / "scores.npy")
    out.mkdir(parents=True, exist_ok=True)
    pieces = DocumentPieces(store, max_tokens, bos=bos)
    documents, first = np.unique(pieces.documents, return_index=True)  # each document's first piece
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    chunk, done = 512, []
    for start in range(0, len(first), chunk):
        part = out / f"part-{start // chunk:06d}.npy"
        if not part.is_file():
            losses = []
            for b in range(start, min(start + chunk, len(first)), batch):
                ids, mask = pad_batch([pieces[int(i)] for i in first[b : b + batch]], pad)
                with torch.no_grad():
                    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
                    losses += [chunked_causal_lm_loss(hidden[r : r + 1], model.lm_head, ids[r : r + 1], mask[r : r + 1],
                                                      4096).item() for r in range(len(ids))]
            np.save(out / "part.tmp.npy", np.asarray(losses))
            (out / "part.tmp.npy").replace(part)
        done.append(np.load(part))
    scores = np.full(num_documents, np.nan)
    scores[documents] = np.concatenate(done) if done else []
    np.save(out / "scores.npy", scores)
    mark_success(out, out.name, stage="difficulty scores")
    return scores


def agreement(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Spearman rank correlation between every two scorers (over documents every scorer scored)."""
    names = [n for n in (*ALL_SCORERS, *MODEL_SCORERS) if n in scores]
    scored = np.all([np.isfinite(scores[n]) for n in names], axis=0)
    scores = {n: scores[n][scored] for n in names}
    ranks = {n: np.argsort(np.argsort(scores[n], kind="stable"), kind="stable").astype(np.float64) for n in names}
    return {a: {b: round(float(np.corrcoef(ranks[a], ranks[b])[0, 1]), 3) for b in names} for a in names}


def by_source(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Each source's mean score on each scorer: how difficulty relates to register."""
    sources = np.asarray(scores["source"])
    names = [n for n in (*ALL_SCORERS, *MODEL_SCORERS) if n in scores]
    return {s: {n: round(float(np.nanmean(scores[n][sources == s])), 4) for n in names}
            for s in sorted(set(sources.tolist()))}
