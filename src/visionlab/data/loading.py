"""What both datamodule families share: in-memory tensor datasets fetched a whole batch at a time, and
DataLoaders whose workers each use one core."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorPairs(Dataset):
    """(inputs, targets) held as tensors; ``__getitems__`` indexes a whole batch at once (no per-item
    collate)."""

    def __init__(self, inputs, targets):
        self.inputs, self.targets = torch.as_tensor(inputs), torch.as_tensor(targets)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitems__(self, indices: list[int]):
        idx = torch.as_tensor(indices)
        return self.inputs[idx], self.targets[idx]

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]


def _passthrough(batch):
    return batch  # datasets return whole batches from __getitems__


def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # one worker = one core; OpenCV's own pool would fight the training threads
    torch.set_num_threads(1)


def batch_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    sampler: Sampler | None = None,
) -> DataLoader:
    """A DataLoader for datasets with ``__getitems__``; workers persist across epochs."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        collate_fn=_passthrough,
        worker_init_fn=_worker_init if num_workers > 0 else None,
    )
