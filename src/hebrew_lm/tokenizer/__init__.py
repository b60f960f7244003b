"""The tokenizer stage: Hebrew byte-level BPE training (train.py) and the tokenizer audit (audit.py)."""
