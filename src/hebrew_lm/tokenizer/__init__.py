"""The tokenizer stages: Hebrew byte-level BPE training (`train`), the tokenizer audit (`audit`, with gold
morpheme boundaries from `morphemes`), and extending a base causal LM's vocabulary with Hebrew (`extend`)."""
