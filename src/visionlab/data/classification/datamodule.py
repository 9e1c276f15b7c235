"""Traffic-sign classification datamodules: real GTSRB and the embedded synthetic set share one pipeline.

The whole dataset stays in memory as uint8; training batches are augmented per sample with albumentations,
evaluation uses a fixed centre crop. Normalisation happens in the model, on the device.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from visionlab.data.classification.albumentations_recipe import SYMMETRIC_CLASSES, train_transform
from visionlab.data.classification.sources import NUM_CLASSES, load_gtsrb
from visionlab.data.classification.synthetic import make_synthetic_signs
from visionlab.data.loading import TensorPairs, batch_loader
from visionlab.data.sampling import EpochSeededSampler
from visionlab.data.splits import group_split

log = logging.getLogger(__name__)


class AugmentedSigns(Dataset):
    """Applies the training recipe to whole batches via ``__getitems__``; randomness is seeded per batch from
    the batch's indices, so augmentation does not depend on worker count or on where a run was resumed."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int, **recipe):
        self.images, self.labels, self.seed = images, labels, seed
        self.plain = train_transform(flip=False, **recipe)
        self.flippable = train_transform(flip=True, **recipe)
        self.symmetric = np.isin(labels, SYMMETRIC_CLASSES)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]):
        idx = np.asarray(indices)
        batch_seed = zlib.crc32(idx.tobytes()) ^ self.seed
        self.plain.set_random_seed(batch_seed)
        self.flippable.set_random_seed(batch_seed + 1)
        out = [
            (self.flippable if self.symmetric[i] else self.plain)(image=self.images[i])["image"] for i in idx
        ]
        return torch.from_numpy(np.stack(out)), torch.from_numpy(self.labels[idx])

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]


def center_crop(images: np.ndarray, crop: int) -> np.ndarray:
    """Evaluation images: the fixed centre ``crop``×``crop`` of N×H×W×C images."""
    off = (images.shape[1] - crop) // 2
    return np.ascontiguousarray(images[:, off : off + crop, off : off + crop])


class TrafficSignDataModule(pl.LightningDataModule):
    """Shared pipeline; subclasses only say where the uint8 arrays come from (``load_arrays``)."""

    num_classes = NUM_CLASSES

    def __init__(
        self,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 1,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        seed: int = 0,
        crop: int = 28,
        rotation: float = 5.0,
        brightness: float = 0.8,
        contrast: float = 0.4,
        pin_memory: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.arrays: dict[str, np.ndarray] | None = None
        self.train_set = self.val_set = self.test_set = None
        self.test_available = False

    def load_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def description(self) -> str:
        return type(self).__name__

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) the model receives: the crop, once the data is loaded."""
        return None if self.arrays is None else (self.hparams.crop, self.hparams.crop)

    @property
    def channels(self) -> int | None:
        return None if self.arrays is None else int(self.arrays["x_train"].shape[-1])

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is not None:
            return
        hp = self.hparams
        arrays = self.load_arrays()
        self.arrays = arrays
        train_idx, val_idx = group_split(arrays["y_train"], arrays["track_train"], hp.val_fraction, hp.split_seed)
        x, y = arrays["x_train"], arrays["y_train"]
        recipe = dict(crop=hp.crop, rotation=hp.rotation, brightness=hp.brightness, contrast=hp.contrast)
        self.train_set = AugmentedSigns(x[train_idx], y[train_idx], seed=hp.seed, **recipe)
        self.val_set = TensorPairs(center_crop(x[val_idx], hp.crop), y[val_idx])
        self.test_available = "x_test" in arrays
        if self.test_available:
            self.test_set = TensorPairs(center_crop(arrays["x_test"], hp.crop), arrays["y_test"])
        log.info(
            "%s: %d train / %d val images (split by class+track, split_seed=%d), test: %s",
            self.description,
            len(train_idx),
            len(val_idx),
            hp.split_seed,
            f"{len(arrays['y_test'])} images" if self.test_available else "not available",
        )

    def _loader(self, dataset, batch_size: int, sampler=None) -> DataLoader:
        return batch_loader(dataset, batch_size, self.hparams.num_workers, self.hparams.pin_memory, sampler)

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSeededSampler(len(self.train_set), seed=self.hparams.seed)
        return self._loader(self.train_set, self.hparams.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        if not self.test_available:
            raise RuntimeError("No test split is available for this dataset.")
        return self._loader(self.test_set, self.hparams.eval_batch_size)


class GTSRBDataModule(TrafficSignDataModule):
    """Real GTSRB from ``data_dir`` (prepared .npz files, the official layout, or a download)."""

    def __init__(self, data_dir: str, cache_dir: str, download: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_dir, self.cache_dir, self.download = Path(data_dir), Path(cache_dir), download

    @property
    def description(self) -> str:
        return f"GTSRB ({self.data_dir})"

    def load_arrays(self) -> dict[str, np.ndarray]:
        return load_gtsrb(self.data_dir, self.cache_dir, self.download)


class SyntheticSignsDataModule(TrafficSignDataModule):
    """The embedded synthetic 43-class set; needs no files and no network."""

    def __init__(self, tracks_per_class: int = 10, frames_per_track: int = 10, test_tracks_per_class: int = 3,
                 data_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.synthetic = dict(tracks_per_class=tracks_per_class, frames_per_track=frames_per_track,
                              test_tracks_per_class=test_tracks_per_class, seed=data_seed)

    @property
    def description(self) -> str:
        return "synthetic signs"

    def load_arrays(self) -> dict[str, np.ndarray]:
        arrays = make_synthetic_signs(**self.synthetic)
        for key in ("y_train", "track_train", "y_test"):
            arrays[key] = arrays[key].astype(np.int64)
        return arrays
