"""A shuffling sampler whose order depends only on (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler


class EpochSeededSampler(DistributedSampler):
    """Like ``RandomSampler`` but reproducible across restarts; Lightning calls ``set_epoch`` every epoch.

    Under DDP (``num_replicas`` > 1) rank r takes every N-th index of the same permutation, padded by its
    first indices to a multiple of N so every rank runs the same number of steps (as ``DistributedSampler``
    does). It is a ``DistributedSampler`` so Lightning uses it as it is instead of wrapping it in one that
    would not pass ``set_epoch`` on."""

    def __init__(self, length: int, seed: int, epoch: int = 0, rank: int = 0, num_replicas: int = 1):
        self.length = length
        self.seed = seed
        self.epoch = epoch
        self.rank, self.num_replicas = rank, num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        if self.num_replicas == 1:
            return iter(order)
        total = len(self) * self.num_replicas
        padded = (order * (total // max(1, self.length) + 1))[:total]
        return iter(padded[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return math.ceil(self.length / self.num_replicas)
