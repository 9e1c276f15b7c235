"""The one datamodule base both task families share: every split in memory as uint8 tensors, batches as
indices.

Why: per-sample Python augmentation in loader workers cannot feed a model on 2 CPU cores, let alone a GPU.
Here a batch leaves the DataLoader as a tensor of sample indices; ``on_after_batch_transfer`` (which Lightning
runs on the training device) gathers the images from a copy of the split that was moved to that device once,
and the ``batched`` backend augments the whole batch there with one sampling grid. The ``albumentations``
backend keeps the per-sample reference recipe in loader workers (``data.num_workers``) and is selected with
``data.augment_backend=albumentations``.

Randomness is reproducible by construction: the shuffling order depends on (seed, epoch) and a batch's
augmentation on (seed, epoch, the batch's indices), never on worker count, device, or where a run was resumed.

Under DDP ``data.batch_size`` is the global batch: each of N processes takes ``batch_size / N`` (the
Lightning-Hydra template's rule, so a recipe means the same on 1 or 8 GPUs), training shards the same (seed,
epoch) permutation across the ranks, and validation/test shard their cases without padding, so every case is
scored exactly once; evaluation batches carry their case indices so results can be gathered by case."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from visionlab.config.checks import at_least, choose, expect
from visionlab.config.errors import ConfigError, DataError
from visionlab.data.batched_ops import batch_generator
from visionlab.data.loading import batch_loader
from visionlab.data.sampling import EpochSeededSampler

BACKENDS = ("batched", "albumentations")


class IndexBatches(Dataset):
    """Yields ``{"split", "index"}`` batches: no per-sample work and no collate, the device does the rest."""

    def __init__(self, split: str, length: int):
        self.split, self.length = split, length

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        return {"split": self.split, "index": torch.as_tensor(indices, dtype=torch.int64)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])


class InMemoryDataModule(pl.LightningDataModule):
    """Subclasses fill ``self.splits`` in ``load_splits`` and provide the two augmentation backends."""

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        seed: int,
        augment_backend: str,
        pin_memory: bool,
        train_repeats: int = 1,  # data.train_repeats / data.samples_per_epoch: segmentation only
        samples_per_epoch: int | None = None,
    ):
        super().__init__()
        # the one home of these values' checks (ConfigError, one line, before anything is written: checks.py)
        choose("data.augment_backend", augment_backend, BACKENDS)
        expect("data.batch_size", batch_size, at_least(1), "an integer ≥ 1", "data.batch_size=64")
        expect(
            "data.eval_batch_size", eval_batch_size, at_least(1), "an integer ≥ 1", "data.eval_batch_size=256"
        )
        expect("data.num_workers", num_workers, at_least(0), "an integer ≥ 0", "data.num_workers=0")
        expect("data.train_repeats", train_repeats, at_least(1), "an integer ≥ 1", "data.train_repeats=1")
        expect(
            "data.samples_per_epoch",
            samples_per_epoch,
            at_least(1),
            "an integer ≥ 1, or null for train_repeats × the training set",
            "data.samples_per_epoch=200",
            nullable=True,
        )
        if samples_per_epoch is not None and train_repeats != 1:
            raise ConfigError(
                f"data.samples_per_epoch={samples_per_epoch} and data.train_repeats={train_repeats} "
                "both set the length of an epoch; keep one (data.train_repeats=1 with "
                "data.samples_per_epoch, or data.samples_per_epoch=null)."
            )
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.global_batch_size, self.world_size = batch_size, 1
        self.seed, self.augment_backend, self.pin_memory = int(seed), augment_backend, pin_memory
        self.train_repeats = max(1, int(train_repeats))
        self.samples_per_epoch = None if samples_per_epoch is None else int(samples_per_epoch)
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._resident: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._batch_augment = None

    # ------------------------------------------------------------------ what subclasses provide
    def load_splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{"train": (x, y), "val": (x, y)[, "test": (x, y)]}, images uint8 N×H×W×C, ready for evaluation."""
        raise NotImplementedError

    def batch_augment(self):
        """Callable (images uint8 NHWC, targets, generator) → (float NCHW in [0, 1], targets) on any
        device."""
        raise NotImplementedError

    def reference_dataset(self) -> Dataset:
        """The per-sample albumentations training set (``__getitems__`` returns a whole augmented batch)."""
        raise NotImplementedError

    @property
    def description(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ set-up
    @property
    def test_available(self) -> bool:
        return "test" in self.splits

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.splits = {
            name: (torch.as_tensor(x), torch.as_tensor(y)) for name, (x, y) in self.load_splits().items()
        }

    def use_global_batch(self, world_size: int) -> None:
        """Split ``data.batch_size`` (the global batch) over ``world_size`` processes; it must divide
        evenly."""
        world_size = max(1, int(world_size))
        if self.global_batch_size % world_size:
            raise ConfigError(
                f"data.batch_size={self.global_batch_size} is the global batch and must be divisible by the "
                f"{world_size} processes of this run (trainer.devices × trainer.num_nodes), e.g. "
                f"data.batch_size={max(world_size, self.global_batch_size // world_size * world_size)}."
            )
        self.world_size = world_size
        self.batch_size = self.global_batch_size // world_size

    def _rank(self) -> tuple[int, int]:
        """(rank, world size) of this process during fit/test (0, 1 when not distributed)."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def split_size(self, split: str) -> int:
        return len(self.splits[split][1])

    def train_length(self) -> int:
        """Training samples per epoch: ``data.samples_per_epoch`` when set (nnU-Net's fixed epoch, so a small
        data set gets as many optimizer steps as a large one), else ``train_repeats`` × the training set."""
        return self.samples_per_epoch or self.split_size("train") * self.train_repeats

    # ------------------------------------------------------------------ loaders
    def _index_loader(self, split: str, batch_size: int, sampler=None) -> DataLoader:
        length = self.train_length() if split == "train" else self.split_size(split)
        rank, world = self._rank()
        if sampler is None and world > 1:  # each case exactly once: no padding, no repeat
            sampler = UnrepeatedDistributedSampler(
                IndexBatches(split, length), num_replicas=world, rank=rank, shuffle=False
            )
        return batch_loader(IndexBatches(split, length), batch_size, num_workers=0, sampler=sampler)

    def _train_sampler(self, length: int):
        rank, world = self._rank()
        if world > 1:
            return EpochSeededSampler(length, self.seed, self._epoch(), rank=rank, num_replicas=world)
        return EpochSeededSampler(length, self.seed, self._epoch())

    def _epoch(self) -> int:
        """The epoch Lightning is about to run or is running (what it passes to ``set_epoch``). After a resume
        from an end-of-epoch checkpoint ``trainer.current_epoch`` still names the finished epoch; this does
        not."""
        if self.trainer is None:
            return 0
        return int(self.trainer.fit_loop.epoch_progress.current.processed)

    def train_dataloader(self) -> DataLoader:
        # Lightning creates the loader's iterator (and worker prefetching starts) before it calls set_epoch,
        # so the sampler must already stand at the epoch a resumed run continues from.
        if self.augment_backend == "albumentations":
            dataset = self.reference_dataset()
            sampler = self._train_sampler(len(dataset))
            return batch_loader(dataset, self.batch_size, self.num_workers, self.pin_memory, sampler)
        length = self.train_length()
        return self._index_loader("train", self.batch_size, self._train_sampler(length))

    def val_dataloader(self) -> DataLoader:
        return self._index_loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        if not self.test_available:
            raise DataError(f"{self.description}: no test split is available.")
        return self._index_loader("test", self.eval_batch_size)

    # ------------------------------------------------------------------ on the training device
    def resident(self, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's tensors on ``device``, copied there once and kept."""
        key = (split, str(device))
        if key not in self._resident:
            x, y = self.splits[split]
            self._resident[key] = (x.to(device), y.to(device))
        return self._resident[key]

    def materialise(self, batch: dict[str, Any], epoch: int = 0) -> tuple[torch.Tensor, ...]:
        """Index batch → (images, targets) on the index tensor's device; training batches are augmented,
        evaluation batches also carry their case indices: (images, targets, index)."""
        split, index = batch["split"], batch["index"]
        x, y = self.resident(split, index.device)
        index = index % len(y)  # an epoch longer than the split (train_length) sees every image several times
        images, targets = x[index], y[index]
        if split != "train":
            return images, targets, index
        if self._batch_augment is None:
            self._batch_augment = self.batch_augment()
        key = zlib.crc32(batch["index"].cpu().numpy().astype(np.int64).tobytes())
        return self._batch_augment(images, targets, batch_generator(self.seed, epoch, key))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "index" in batch:
            return self.materialise(batch, self._epoch())
        return batch
