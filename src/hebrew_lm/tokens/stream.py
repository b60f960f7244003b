"""The order in which training sees its sequences: shuffled per epoch with a seed, endless, and
addressed by one integer (the number of sequences consumed), which is all a checkpoint needs."""

from __future__ import annotations

import torch


def sequence_order(num_sequences: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_sequences, generator=g)


def batch_indices(position: int, count: int, num_sequences: int, seed: int) -> list[int]:
    """Sequence indices `position .. position + count` of the endless, per-epoch shuffled stream."""
    out = []
    while count:
        epoch, offset = divmod(position, num_sequences)
        order = sequence_order(num_sequences, seed, epoch)
        take = min(count, num_sequences - offset)
        out.extend(order[offset : offset + take].tolist())
        position += take
        count -= take
    return out
