"""The order in which training sees its sequences: shuffled per epoch with a seed, endless, and
addressed by one integer (the number of sequences consumed), which is all a checkpoint needs.

`SequenceStream` is that stream. With `lengths` (and the `batch_size` it is read in), each epoch's
shuffled order is cut into windows of `BUCKET_WINDOW` batches, each window sorted by length and cut into
batches, and the epoch's full batches shuffled: a batch holds sequences of about one length, so padding them costs little, and
it is still random which lengths come when (the length-grouped sampler of transformers and fairseq).
"""

from __future__ import annotations

import numpy as np
import torch

BUCKET_WINDOW = 64
"""Batches per window that is sorted by length: larger groups lengths more tightly, smaller keeps more
of the shuffle inside a batch."""


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _bucketed(order: torch.Tensor, lengths: np.ndarray, batch_size: int, g: torch.Generator, phase: int) -> torch.Tensor:
    """`order` grouped by length into batches of `batch_size` that begin `phase` sequences into the epoch
    (the reads begin at multiples of batch_size from the stream's start, not the epoch's)."""
    head, order = order[:phase], order[phase:]
    window = batch_size * BUCKET_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[torch.from_numpy(np.argsort(-lengths[chunk.numpy()], kind="stable"))]
        batches.extend(chunk.split(batch_size))
    tail = [batches.pop()] if batches and len(batches[-1]) < batch_size else []  # a short last batch stays last
    shuffled = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
    return torch.cat([head, *shuffled, *tail])


class SequenceStream:
    """The endless stream of sequence indices a training run reads, `count` at a time from `position`."""

    def __init__(self, num_sequences: int, seed: int, lengths=None, batch_size: int = 1) -> None:
        self.num_sequences, self.seed, self.batch_size = num_sequences, seed, batch_size
        self.lengths = None if lengths is None else np.asarray(lengths)
        self._epoch: tuple[int, torch.Tensor] | None = None

    def order(self, epoch: int) -> torch.Tensor:
        if self._epoch is None or self._epoch[0] != epoch:
            g = epoch_generator(self.seed, epoch)
            order = torch.randperm(self.num_sequences, generator=g)
            if self.lengths is not None:  # the same shuffle, then grouped with the generator's next draws
                order = _bucketed(order, self.lengths, self.batch_size, g, -epoch * self.num_sequences % self.batch_size)
            self._epoch = (epoch, order)
        return self._epoch[1]

    def indices(self, position: int, count: int) -> list[int]:
        """Sequence indices `position .. position + count` of the stream."""
        out = []
        while count:
            epoch, offset = divmod(position, self.num_sequences)
            take = min(count, self.num_sequences - offset)
            out.extend(self.order(epoch)[offset : offset + take].tolist())
            position += take
            count -= take
        return out



class Pool:
    """A share of every step's batch, filled from one pool of sequence ids in its own shuffled
    (length-bucketed) order: the building block of mixed batches. `slots` pieces a step, or with `first`
    (the pool's position at each step, a pure function of the step) as many as `first(step + 1) - first(step)`:
    a fractional share of a batch then averages out over the steps."""

    def __init__(self, ids: np.ndarray, slots: int, seed: int, lengths: np.ndarray | None = None,
                 first=None) -> None:
        self.ids, self.slots = np.asarray(ids), slots
        self.first = first or (lambda step: step * slots)
        self.stream = SequenceStream(len(self.ids), seed, lengths, max(1, slots))

    def draw(self, step: int) -> list[int]:
        """The ids filling this pool's slots at `step` (its own step count, from 0)."""
        start = self.first(step)
        return self.ids[self.stream.indices(start, self.first(step + 1) - start)].tolist()


class StepStream:
    """The engine's stream when each step's batch is composed (`step_indices(step)`, `batch` ids long):
    the engine asks for positions, which map to (step, slot)."""

    batch: int

    def step_indices(self, step: int) -> list[int]:
        raise NotImplementedError

    def indices(self, position: int, count: int) -> list[int]:
        out: list[int] = []
        ids: list[int] = []
        for p in range(position, position + count):
            step, slot = divmod(p, self.batch)
            if slot == 0 or not out:
                ids = self.step_indices(step)
            out.append(ids[slot])
        return out


def slot_counts(weights: list[float], batch: int) -> list[int]:
    """Slots per pool for a batch, in proportion to `weights` (largest remainders); every positive weight
    gets a slot, or it is an error (a batch too small for the mix)."""
    total = sum(weights)
    exact = [batch * w / total for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)[: batch - sum(counts)]:
        counts[i] += 1
    starved = [i for i, (w, n) in enumerate(zip(weights, counts)) if w > 0 and n == 0]
    if starved:
        raise ValueError(f"weights {weights}: pool(s) {starved} get no slot in a batch of {batch}; "
                         "raise their weight or the batch size")
    return counts


class WeightedStream(StepStream):
    """Every step's batch split among pools by fixed weights (SFT's per-source sampling weights)."""

    def __init__(self, pools: list[np.ndarray], weights: list[float], lengths: np.ndarray | None, batch: int,
                 seed: int) -> None:
        """`lengths` (of every sequence id) buckets each pool's order by length; None: plain shuffles."""
        self.batch, self.lengths = batch, lengths
        self.slots = slot_counts(weights, batch)
        self.pools = [Pool(ids, n, seed + 101 * k, None if lengths is None else lengths[ids])
                      for k, (ids, n) in enumerate(zip(pools, self.slots)) if n]

    def step_indices(self, step: int) -> list[int]:
        ids = [i for pool in self.pools for i in pool.draw(step)]
        # with bucketing, the step's sequences sorted by length: its micro-batches pad little
        return sorted(ids, key=lambda i: self.lengths[i]) if self.lengths is not None else ids
