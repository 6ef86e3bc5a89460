"""The order of an epoch: a function of (seed, epoch) alone, which is what makes resumption exact."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["EpochSampler", "seed_of"]


def seed_of(*values: int) -> int:
    """A 63-bit seed derived from a few integers (seed, epoch, purpose), independent of every global RNG."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, np.uint64)[0] & ((1 << 63) - 1))


class EpochSampler(torch.utils.data.Sampler):
    """One process's share of an epoch: a permutation seeded by (seed, epoch), dealt round-robin to the
    processes (padded by repetition so every process gets as many items), cut to the first ``limit`` items,
    minus ``skip`` leading items.

    The order depends on nothing but its arguments, which is what makes resumption exact.
    """

    def __init__(self, n, seed=0, epoch=0, shuffle=True, rank=0, world_size=1, pad=True, skip=0, limit=None):
        order = list(range(n))
        if shuffle:
            g = torch.Generator().manual_seed(seed_of(seed, epoch, 17))
            order = torch.randperm(n, generator=g).tolist()
        if pad and world_size > 1 and n % world_size:
            order += (order * world_size)[: world_size - n % world_size]
        self.indices = order[rank::world_size][:limit][skip:]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)
