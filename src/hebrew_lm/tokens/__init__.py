"""Tokenized data on disk and the batch streams read from it: `store` (a corpus split tokenized once
into a memory-mapped array, named by what made it) and `stream` (the seeded, endless, per-epoch
shuffled order of sequences, addressed by one integer position so that resume is exact)."""
