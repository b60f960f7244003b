"""Masked-LM pretraining: model presets, masking (token and whole-word), the masked-position loss.

The pretraining stage itself (token store, packing, training loop, checkpoints, export) is issue 4's
remaining work; these pieces are tested on their own.
"""
