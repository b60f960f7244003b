"""Dynamic masking for masked-LM pretraining: a fresh draw each time a sequence is seen.

    inputs, labels = mask_tokens(ids, masker, generator=torch.Generator().manual_seed(0))

Of the positions chosen (`probability`, 15% by default; special tokens never), 80% become <mask>, 10%
a random ordinary token and 10% stay, as in BERT and RoBERTa. With `whole_word=True` the choice is
made per whitespace word: every byte-level BPE piece of a chosen word is masked together (the
paper's first open question). A word starts at a token whose text begins with the space mark 'Ġ',
and at the first token after a special token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hebrew_lm.tokenizer.specials import MASK, SPECIAL_TOKENS


@dataclass
class Masker:
    """What masking needs to know about a tokenizer, as lookup tables over token ids."""

    vocab_size: int
    mask_id: int
    is_special: torch.Tensor  # bool [V]
    starts_word: torch.Tensor  # bool [V]: the token begins with a space mark
    probability: float = 0.15
    whole_word: bool = False

    @classmethod
    def from_tokenizer(cls, tokenizer, probability: float = 0.15, whole_word: bool = False) -> "Masker":
        """From a `tokenizers.Tokenizer` or a transformers fast tokenizer."""
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        size = backend.get_vocab_size()
        is_special = torch.zeros(size, dtype=torch.bool)
        starts_word = torch.zeros(size, dtype=torch.bool)
        for token, i in backend.get_vocab().items():
            is_special[i] = token in SPECIAL_TOKENS
            starts_word[i] = token.startswith("\u0120")  # 'Ġ', the byte-level space
        return cls(size, backend.token_to_id(MASK), is_special, starts_word, probability, whole_word)


def mask_tokens(input_ids: torch.Tensor, masker: Masker, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) for a batch of token ids [B, T]; labels are -100 where nothing is predicted."""
    special = masker.is_special[input_ids]  # B,T
    if masker.whole_word:
        after_special = torch.zeros_like(special)
        after_special[:, 1:] = special[:, :-1]
        starts = (masker.starts_word[input_ids] | after_special) & ~special
        starts[:, 0] |= ~special[:, 0]
        word = torch.cumsum(starts.long(), dim=1)  # B,T: the word each token belongs to (1-based)
        chosen_words = torch.rand(word.shape, generator=generator) < masker.probability  # B, per word id
        chosen = torch.gather(chosen_words, 1, (word - 1).clamp(min=0)) & ~special
    else:
        chosen = (torch.rand(input_ids.shape, generator=generator) < masker.probability) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[chosen & (roll < 0.8)] = masker.mask_id
    to_random = chosen & (roll >= 0.8) & (roll < 0.9)
    first_ordinary = len(SPECIAL_TOKENS)  # random replacements are ordinary tokens, never special ones
    random_ids = torch.randint(first_ordinary, masker.vocab_size, input_ids.shape, generator=generator)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels
