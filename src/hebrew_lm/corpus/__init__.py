"""The corpus stage: readers, filters, deduplication, shuffling and sharded output."""
