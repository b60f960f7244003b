"""Masked-LM pretraining (`hebrew-lm pretrain`, docs/pretrain.md): RoBERTa model presets, masking (token
and whole-word), the masked-position loss as an objective on the shared engine, packed sequences, the
fill-mask probe, and export to a Hugging Face folder; `stage` hands them to `hebrew_lm.engine.runner`.
"""
