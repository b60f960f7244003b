"""The decoder track (Hebatron recipe): sparse mixture-of-experts causal LMs built as plain
`transformers` classes (`model`), and the causal-LM objective on the shared training engine
(`objective`), with aux-loss-free router balancing and expert-load metrics."""
