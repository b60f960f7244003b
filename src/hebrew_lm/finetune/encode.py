"""Turning task data into model inputs, and model outputs back into word-level predictions.

NER: each word is tokenized on its own (with the space that precedes it in running text, so a
byte-level BPE sees what it saw in pretraining); the word's first piece carries its tag and the other
pieces are ignored (-100). A sentence longer than the max length is cut into consecutive word-aligned
windows, so every word is trained on and scored. Classification: one text per input, truncated at the
max length, and the truncations counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hebrew_lm.records import Example, Sentence

IGNORE = -100


@dataclass
class Encoded:
    features: list[dict[str, list[int]]]
    """One dict per model input: input_ids, attention_mask, labels."""
    owner: list[int]
    """The sentence/example each input came from."""
    windowed: int = 0
    """NER: sentences cut into more than one window. Classification: texts truncated."""


def specials(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a single sequence (RoBERTa: [<s>], [</s>]),
    found by encoding a word with and without them (works for any fast tokenizer)."""
    plain = tokenizer(["שלום"], add_special_tokens=False)["input_ids"][0]
    full = tokenizer(["שלום"])["input_ids"][0]
    for i in range(len(full) - len(plain) + 1):
        if full[i:i + len(plain)] == plain:
            return full[:i], full[i + len(plain):]
    raise ValueError("cannot tell where this tokenizer puts its special tokens")  # pragma: no cover


def special_layout(tokenizer) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a single sequence (RoBERTa: 1, 1)."""
    before, after = specials(tokenizer)
    return len(before), len(after)


def word_pieces(tokenizer, sentences: list[Sentence]) -> list[list[list[int]]]:
    """The token ids of every word of every sentence, in one batched call."""
    texts, shape = [], []
    for s in sentences:
        shape.append(len(s.words))
        texts.extend((" " + w) if i else w for i, w in enumerate(s.words))
    ids = tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"] if texts else []
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    out, k = [], 0
    for n in shape:
        out.append([piece or [unk] for piece in ids[k:k + n]])
        k += n
    return out


def sentence_lengths(tokenizer, sentences: list[Sentence]) -> list[int]:
    before, after = special_layout(tokenizer)
    return [before + after + sum(len(p) for p in pieces) for pieces in word_pieces(tokenizer, sentences)]


def text_lengths(tokenizer, examples: list[Example]) -> list[int]:
    # Over-long texts are the point here (they are counted), so no "longer than the maximum" warning.
    return [len(ids) for ids in tokenizer([e.text for e in examples], verbose=False, split_special_tokens=True)["input_ids"]]


def choose_max_len(lengths: list[int], cap: int) -> int:
    """The 95th percentile of the lengths, rounded up to a multiple of 64, at most `cap`."""
    p95 = float(np.percentile(lengths, 95)) if lengths else 64.0
    return int(min(cap, max(64, 64 * math.ceil(p95 / 64))))


def encode_ner(tokenizer, sentences: list[Sentence], label_ids: dict[str, int], max_len: int) -> Encoded:
    prefix, suffix = specials(tokenizer)
    before, after = len(prefix), len(suffix)
    room = max_len - before - after
    enc = Encoded([], [])
    for si, (s, pieces) in enumerate(zip(sentences, word_pieces(tokenizer, sentences))):
        windows: list[list[int]] = [[]]
        used = 0
        for wi, p in enumerate(pieces):
            if used + len(p) > room and windows[-1]:
                windows.append([])
                used = 0
            windows[-1].append(wi)
            used += len(p)
        enc.windowed += len(windows) > 1
        for window in windows:
            ids, labels = [], []
            for wi in window:
                p = pieces[wi][:room]
                ids.extend(p)
                labels.extend([label_ids[s.tags[wi]] if s.tags else IGNORE] + [IGNORE] * (len(p) - 1))
            ids, labels = ids[:room], labels[:room]
            full = prefix + ids + suffix
            enc.features.append({"input_ids": full, "attention_mask": [1] * len(full),
                                 "labels": [IGNORE] * before + labels + [IGNORE] * after})
            enc.owner.append(si)
    return enc


def encode_classification(tokenizer, examples: list[Example], label_ids: dict[str, int], max_len: int) -> Encoded:
    full = tokenizer([e.text for e in examples], verbose=False, split_special_tokens=True)["input_ids"]
    cut = tokenizer([e.text for e in examples], truncation=True, max_length=max_len, split_special_tokens=True)
    enc = Encoded([], list(range(len(examples))))
    for e, ids, mask, whole in zip(examples, cut["input_ids"], cut["attention_mask"], full):
        enc.windowed += len(whole) > len(ids)
        enc.features.append({"input_ids": ids, "attention_mask": mask, "labels": label_ids[e.label]})
    return enc


def word_predictions(predictions: np.ndarray, label_ids: np.ndarray, sentences: list[Sentence],
                     id_to_label: list[str], decode: str = "argmax") -> list[list[str]]:
    """Predicted tags per word, from per-position predictions (padding and ignored positions dropped):
    label ids, or log-probabilities over the labels decoded by `argmax` or `viterbi` (the best legal
    BIOES sequence).

    The labelled positions of the inputs, read in order, are exactly the words of the sentences in order."""
    flat = predictions[label_ids != IGNORE]
    out, k = [], 0
    for s in sentences:
        words = flat[k:k + len(s.words)]
        if words.ndim == 1:
            ids = words.tolist()
        elif decode == "viterbi":
            ids = bioes_viterbi(words, id_to_label)
        else:
            ids = words.argmax(-1).tolist()
        out.append([id_to_label[i] for i in ids])
        k += len(s.words)
    if k != len(flat):
        raise RuntimeError(f"{len(flat)} labelled positions for {k} words")  # pragma: no cover
    return out


def bioes_viterbi(log_probs: np.ndarray, labels: list[str]) -> list[int]:
    """The likeliest label sequence under per-word log-probabilities [words, labels] among the legal BIOES
    sequences (`legal_transition`; it starts and ends outside an entity). Illegal moves cost -inf."""
    from hebrew_lm.labels import legal_transition

    n = len(labels)
    allowed = np.array([[legal_transition(a, b) for b in labels] for a in labels])
    start = np.array([legal_transition("O", b) for b in labels])
    end = np.array([legal_transition(a, "O") for a in labels])
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros((len(log_probs), n), dtype=np.int64)
    for t in range(1, len(log_probs)):
        cand = np.where(allowed, score[:, None], -np.inf)  # previous label x this label
        back[t] = cand.argmax(0)
        score = cand.max(0) + log_probs[t]
    score = np.where(end, score, -np.inf)
    best = [int(score.argmax())]
    for t in range(len(log_probs) - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    return best[::-1]
