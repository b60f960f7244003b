"""Curriculum continued pretraining: a base causal LM continued on Hebrew in phases, easy to hard, with
anchor text of its own language in every batch (`hebrew-lm cpt`, docs/cpt.md)."""
