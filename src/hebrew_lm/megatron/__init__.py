"""The handoff to Megatron-Bridge (`hebrew-lm megatron`, docs/scale.md): a cpt config's curriculum written as
Megatron indexed datasets and per-phase blends, for the runs a 30B MoE needs at its real scale."""
