"""The tokenizer audit: how well do tokenizers fit Hebrew? Any number side by side.

    hebrew-lm tokenizer audit --tokenizers runs/tiny/tokenizer other/tokenizer.json spm.model \\
        --text runs/tiny/corpus --output_dir runs/tiny/audit

Measures, on held-out text (normalized as the corpus was):
- fertility (tokens per whitespace word), the share of words split into 2+ tokens, characters per
  token, the share of the vocabulary used, the rate of byte-fallback or unknown tokens, and the share
  of documents that decode back exactly;
- morphological alignment on gold morpheme segmentations (CoNLL-U with multiword tokens, such as the
  Hebrew Treebank's): of the morpheme boundaries inside a word, how many are token boundaries
  (recall), and of the token boundaries inside a word, how many are morpheme boundaries (precision),
  for all words and for words that carry prefix letters (ו ה ב ל מ ש כ).

Writes audit.md, audit.csv, audit.json and audit.png. docs/tokenizer.md explains each number.
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hebrew_lm.runs import claim_output_dir
from hebrew_lm.tokenizer.morphemes import MorphWord, read_morph_words, treebank_morph_words

log = logging.getLogger("hebrew_lm")

_WORD = re.compile(r"\S+")


# --------------------------------------------------------------------------------------------------
# Tokenizers under audit


class Candidate:
    """One tokenizer, seen through what the audit needs: token ids with character offsets."""

    name: str
    vocab_size: int

    def encode_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def is_fallback(self, token_id: int) -> bool:
        """An unknown token, or a byte that is only part of a character."""
        raise NotImplementedError


class HFCandidate(Candidate):
    def __init__(self, tokenizer, name: str) -> None:
        tokenizer.encode_special_tokens = True  # held-out text's `<mask>` is text, not a special id
        self.tok = tokenizer
        self.name = name
        self.vocab_size = tokenizer.get_vocab_size()
        unk = tokenizer.token_to_id("<unk>")
        self._unk = {unk} if unk is not None else set()
        self._fallback: dict[int, bool] = {}

    def encode_offsets(self, texts):
        return [(e.ids, e.offsets) for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)

    def is_fallback(self, token_id):
        if token_id not in self._fallback:
            self._fallback[token_id] = token_id in self._unk or "\ufffd" in self.tok.decode([token_id])
        return self._fallback[token_id]


class SentencePieceCandidate(Candidate):
    def __init__(self, model_path: str, name: str) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        self.name = name
        self.vocab_size = self.sp.get_piece_size()

    def encode_offsets(self, texts):
        """Character offsets recovered by walking the pieces along the text (sentencepiece reports
        offsets only through protobuf, which is not a dependency here)."""
        out = []
        for text in texts:
            ids = self.sp.encode(text)
            virtual = " " + text  # the dummy prefix that sentencepiece adds
            pos, pending, offsets = 0, b"", []
            for token_id in ids:
                piece = self.sp.id_to_piece(token_id)
                if self.sp.is_byte(token_id):
                    pending += bytes([int(piece[3:5], 16)])
                    try:
                        ch = pending.decode("utf-8")
                    except UnicodeDecodeError:
                        offsets.append((pos, pos))  # part of a character: zero width until it completes
                        continue
                    pending = b""
                    offsets.append((pos, pos + len(ch)))
                    pos += len(ch)
                    continue
                surface = piece.replace("\u2581", " ")
                found = virtual.find(surface, pos) if not self.sp.is_unknown(token_id) else -1
                if found < 0:
                    offsets.append((pos, pos))
                    continue
                offsets.append((found, found + len(surface)))
                pos = found + len(surface)
            out.append((ids, [(max(0, a - 1), max(0, b - 1)) for a, b in offsets]))
        return out

    def decode(self, ids):
        return self.sp.decode(ids)

    def is_fallback(self, token_id):
        return self.sp.is_byte(token_id) or self.sp.is_unknown(token_id)


def load_candidate(spec: str, name: str | None = None) -> Candidate:
    """A tokenizer folder (with tokenizer.json), a tokenizer.json file, or a sentencepiece .model."""
    from tokenizers import Tokenizer

    path = Path(spec)
    label = name or (path.parent.name if path.name in ("tokenizer.json",) else path.name)
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return HFCandidate(Tokenizer.from_file(str(path / "tokenizer.json")), label)
    if path.is_file() and path.suffix == ".json":
        return HFCandidate(Tokenizer.from_file(str(path)), label)
    if path.is_file() and path.suffix == ".model":
        return SentencePieceCandidate(str(path), label)
    if path.is_dir():
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"{spec}: the tokenizer in this folder has no fast (Rust) backend to audit")
        return HFCandidate(backend, label)
    raise ValueError(f"{spec}: not a tokenizer folder, a tokenizer.json or a sentencepiece .model")


# --------------------------------------------------------------------------------------------------
# Measuring


def _word_token_ends(ids: list[int], offsets: list[tuple[int, int]], text: str) -> list[tuple[int, int, list[int]]]:
    """For each whitespace word of `text`: (start, end, [end offsets of its tokens]). A token that starts
    in the whitespace before a word (byte-level 'Ġ', sentencepiece '▁') belongs to that word."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    ends_of_words = [e for _, e in spans]
    per_word: list[list[int]] = [[] for _ in spans]
    for (start, end), _id in zip(offsets, ids):
        i = bisect.bisect_right(ends_of_words, start)
        if i < len(spans):
            per_word[i].append(min(end, spans[i][1]))
    return [(s, e, t) for (s, e), t in zip(spans, per_word)]


def measure(candidate: Candidate, docs: list[str], morph_words: list[MorphWord], batch: int = 256) -> dict[str, Any]:
    tokens = words = split_words = chars = fallback = roundtrip = 0
    used: set[int] = set()
    for i in range(0, len(docs), batch):
        chunk = docs[i : i + batch]
        for text, (ids, offsets) in zip(chunk, candidate.encode_offsets(chunk)):
            used.update(ids)
            fallback += sum(1 for t in ids if candidate.is_fallback(t))
            roundtrip += candidate.decode(ids) == text
            for start, end, ends in _word_token_ends(ids, offsets, text):
                words += 1
                chars += end - start
                n = max(1, len(ends))
                tokens += n
                split_words += n > 1
    result: dict[str, Any] = {
        "tokenizer": candidate.name,
        "vocab_size": candidate.vocab_size,
        "documents": len(docs),
        "words": words,
        "fertility": tokens / max(1, words),
        "split_word_share": split_words / max(1, words),
        "chars_per_token": chars / max(1, tokens),
        "vocab_used_share": len(used) / max(1, candidate.vocab_size),
        "fallback_rate": fallback / max(1, tokens),
        "roundtrip_share": roundtrip / max(1, len(docs)),
    }
    result.update(morph_alignment(candidate, morph_words))
    return result


def morph_alignment(candidate: Candidate, morph_words: list[MorphWord], batch: int = 1024) -> dict[str, Any]:
    """Boundary recall and precision inside words, each word encoded as it appears inside a sentence
    (after a space), for all words and for words with prefix letters."""
    counts = {"all": [0, 0, 0], "prefixed": [0, 0, 0]}  # gold, predicted, both
    for i in range(0, len(morph_words), batch):
        chunk = morph_words[i : i + batch]
        for word, (ids, offsets) in zip(chunk, candidate.encode_offsets([" " + w.surface for w in chunk])):
            inside = {e - 1 for _, e in offsets[:-1] if 0 < e - 1 < len(word.surface)}
            gold = set(word.boundaries)
            for key in ("all", "prefixed") if word.has_prefix else ("all",):
                c = counts[key]
                c[0] += len(gold)
                c[1] += len(inside)
                c[2] += len(gold & inside)
    out: dict[str, Any] = {"morph_words": len(morph_words)}
    for key, (gold, predicted, both) in counts.items():
        recall = both / gold if gold else float("nan")
        precision = both / predicted if predicted else float("nan")
        f1 = 2 * recall * precision / (recall + precision) if gold and predicted and (recall + precision) else float("nan")
        out[f"morph_recall_{key}"] = recall
        out[f"morph_precision_{key}"] = precision
        out[f"morph_f1_{key}"] = f1
    return out


def audit(candidates: list[Candidate], docs: list[str], morph_words: list[MorphWord]) -> list[dict[str, Any]]:
    if not docs:
        raise ValueError("the audit text holds no documents")
    rows = []
    for candidate in candidates:
        log.info("audit: measuring %s", candidate.name)
        rows.append(measure(candidate, docs, morph_words))
    return rows


# --------------------------------------------------------------------------------------------------
# Reporting

COLUMNS = [
    ("tokenizer", "tokenizer", "{}"),
    ("vocab_size", "vocab", "{:,}"),
    ("fertility", "tokens/word", "{:.3f}"),
    ("split_word_share", "words split", "{:.1%}"),
    ("chars_per_token", "chars/token", "{:.2f}"),
    ("vocab_used_share", "vocab used", "{:.1%}"),
    ("fallback_rate", "byte/unk tokens", "{:.2%}"),
    ("roundtrip_share", "exact round trip", "{:.1%}"),
    ("morph_recall_all", "morph recall", "{:.3f}"),
    ("morph_precision_all", "morph precision", "{:.3f}"),
    ("morph_f1_all", "morph F1", "{:.3f}"),
    ("morph_recall_prefixed", "recall, prefixed words", "{:.3f}"),
    ("morph_precision_prefixed", "precision, prefixed words", "{:.3f}"),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = ["| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def write_report(rows: list[dict[str, Any]], out: Path, note: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    first = rows[0]
    md = [
        "# Tokenizer audit",
        "",
        f"{first['documents']:,} held-out documents ({first['words']:,} words); morpheme boundaries from "
        f"{first['morph_words']:,} gold-segmented words. {note}".strip(),
        "",
        markdown_table(rows),
        "",
        "tokens/word: fertility (lower packs more text into a sequence). words split: share of words cut into 2+ "
        "tokens. byte/unk tokens: tokens that are a fraction of a character, or unknown. morph recall: morpheme "
        "boundaries inside words that are token boundaries; precision: token boundaries inside words that are "
        "morpheme boundaries. See docs/tokenizer.md.",
        "",
        "![audit](audit.png)",
    ]
    (out / "audit.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "audit.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "audit.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out / "audit.png")


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    from hebrew_lm.plots import pyplot

    plt = pyplot()
    import numpy as np

    panels = [("fertility", "tokens per word (lower is better)"), ("split_word_share", "share of words split"),
              ("morph_f1_all", "morpheme boundary F1 (higher is better)")]
    names = [r["tokenizer"] for r in rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.5 * len(rows) + 1.8))
    colors = plt.cm.tab10(np.arange(len(rows)) % 10)
    for ax, (key, title) in zip(axes, panels):
        values = [r[key] for r in rows]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        for i, v in enumerate(values[::-1]):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.margins(x=0.2)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The tokenizer stage's own audit, with baselines


def train_sentencepiece(texts: Iterable[str], vocab_size: int, model_type: str, model_prefix: Path) -> Path:
    """A sentencepiece model of `model_type` ('bpe' or 'unigram') trained on `texts` (one sentence a line).

    Identity normalization, because the text is normalized already; byte fallback, so nothing is unknown.
    """
    import os

    import sentencepiece as spm

    def lines():
        for text in texts:
            for line in text.split("\n"):
                if line.strip():
                    yield line

    spm.SentencePieceTrainer.train(
        sentence_iterator=lines(), model_prefix=str(model_prefix), vocab_size=vocab_size, model_type=model_type,
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        max_sentence_length=1 << 16, num_threads=os.cpu_count() or 1, hard_vocab_limit=False, minloglevel=2,
    )
    return model_prefix.with_suffix(".model")


def audit_stage_tokenizer(config, folder: Path, sample) -> list[dict[str, Any]]:
    """Audit the stage's tokenizer (and, if configured, baselines trained here) on the corpus's
    validation split and the treebank's dev/test morphemes; write folder/audit/."""
    from itertools import islice

    from hebrew_lm.corpus.shards import read_texts
    from hebrew_lm.embedded.english import english_docstrings
    from hebrew_lm.tokenizer.bpe import train_byte_level_bpe

    out = folder / "audit"
    docs = list(islice(read_texts(config.corpus_dir, "validation"), config.audit_max_docs))
    if not docs:
        log.warning("tokenizer: the corpus has no validation documents; auditing on training documents")
        docs = list(islice(sample.texts(), config.audit_max_docs))
    ours = "hebrew-lm byte-level BPE" + (" (char-aligned)" if config.char_aligned else "")
    candidates: list[Candidate] = [load_candidate(str(folder), name=ours)]
    if config.audit_baselines:
        base = out / "baselines"
        base.mkdir(parents=True, exist_ok=True)
        budget = min(config.sample_bytes, config.baseline_sample_bytes)
        other = not config.char_aligned
        log.info("tokenizer: training the %s byte-level BPE baseline", "char-aligned" if other else "plain")
        capped = type(sample)(sample.corpus_dir, sample.split, budget, sample.seed)
        twin = train_byte_level_bpe(capped.batches(), config.vocab_size, config.min_frequency,
                                    config.add_prefix_space, char_aligned=other)
        twin.save(str(base / "byte-level-bpe.json"))
        candidates.append(load_candidate(str(base / "byte-level-bpe.json"),
                                         name="char-aligned byte-level BPE" if other else "plain byte-level BPE (paper)"))
        for model_type in ("bpe", "unigram"):
            log.info("tokenizer: training the sentencepiece %s baseline", model_type)
            capped = type(sample)(sample.corpus_dir, sample.split, budget, sample.seed)
            model = train_sentencepiece(capped.texts(), config.vocab_size, model_type, base / f"sentencepiece-{model_type}")
            candidates.append(load_candidate(str(model), name=f"sentencepiece {model_type}"))
        log.info("tokenizer: training the English byte-level BPE baseline")
        english = train_byte_level_bpe(iter([list(english_docstrings(budget))]), config.vocab_size, config.min_frequency)
        english.save(str(base / "english-bpe.json"))
        candidates.append(load_candidate(str(base / "english-bpe.json"), name="English byte-level BPE"))
    rows = audit(candidates, docs, treebank_morph_words())
    write_report(rows, out, note="Held-out text: the corpus's validation split; morphemes: Hebrew Treebank dev+test.")
    for row in rows:
        log.info("tokenizer audit: %-28s %.3f tokens/word, morph F1 %.3f", row["tokenizer"], row["fertility"], row["morph_f1_all"])
    return rows


def audit_texts(paths: list[str], max_docs: int) -> list[str]:
    """Held-out documents from corpus folders (validation split) or files in any corpus input format,
    normalized with the default rules (a corpus folder's text is normalized already)."""
    from itertools import islice

    from hebrew_lm.corpus.config import InputSpec
    from hebrew_lm.corpus.readers import read_input, resolve_inputs
    from hebrew_lm.corpus.shards import read_texts
    from hebrew_lm.text.normalize import Normalizer

    normalize = Normalizer()
    docs: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            docs.extend(islice(read_texts(path, "validation"), max_docs - len(docs)))
        else:
            for item in resolve_inputs([InputSpec(path=path)]):
                for doc in read_input(item, max_chars=1_000_000):
                    if doc.error is None and doc.text.strip():
                        docs.append(normalize(doc.text))
                        if len(docs) >= max_docs:
                            break
        if len(docs) >= max_docs:
            break
    return docs[:max_docs]


def run_audit(tokenizers: list[str], text: list[str], output_dir: str, names: list[str] | None = None,
              morph: list[str] | None = None, max_docs: int = 2000) -> Path:
    """`hebrew-lm tokenizer audit`: compare tokenizers and write the report into output_dir."""
    if names and len(names) != len(tokenizers):
        raise ValueError(f"--names gives {len(names)} names for {len(tokenizers)} tokenizers")
    out = claim_output_dir(Path(output_dir), "tokenizer audit")  # before the work: a bad output_dir fails fast
    candidates = [load_candidate(t, names[i] if names else None) for i, t in enumerate(tokenizers)]
    docs = audit_texts(text, max_docs)
    if not docs:
        raise ValueError(f"no documents to audit on in {', '.join(text)}")
    morph_words = [w for path in morph for w in read_morph_words(path)] if morph else treebank_morph_words()
    rows = audit(candidates, docs, morph_words)
    source = "the Hebrew Treebank dev+test" if not morph else ", ".join(morph)
    write_report(rows, out, note=f"Held-out text: {', '.join(text)}; morphemes: {source}.")
    return out
