"""Few-shot evaluation of causal LMs on lm-evaluation-harness (`hebrew-lm eval`, docs/eval.md)."""
