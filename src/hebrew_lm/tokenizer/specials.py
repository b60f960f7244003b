"""RoBERTa's special tokens, in the order that gives them ids 0..4."""

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BOS, PAD, EOS, UNK, MASK = SPECIAL_TOKENS
