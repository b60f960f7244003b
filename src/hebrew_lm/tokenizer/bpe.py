"""Byte-level BPE training (RoBERTa's pipeline), plain or with character-aligned merges: the one BPE
trainer the tokenizer stage, its audit baselines and the benchmarks use.

    tokenizer = train_byte_level_bpe(batches_of_texts, vocab_size=52_000, min_frequency=2)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from hebrew_lm.tokenizer.specials import BOS, EOS, SPECIAL_TOKENS


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
