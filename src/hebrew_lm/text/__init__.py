"""Hebrew text rules: normalization, script detection and word splitting (pure functions)."""
