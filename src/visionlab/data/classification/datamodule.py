"""Traffic-sign classification datamodules: real GTSRB and the embedded synthetic set share one pipeline.

The whole dataset stays in memory as uint8 (``InMemoryDataModule``); training batches are augmented on the training
device (``augment.SignBatchAugment``) or, as the reference backend, per sample with albumentations; evaluation uses
a fixed centre crop. Normalisation happens in the model, on the device.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from visionlab.data.albumentations_backend import keep_opencv_single_threaded, reseed
from visionlab.data.classification.albumentations_recipe import train_transform
from visionlab.data.classification.augment import SignBatchAugment
from visionlab.data.classification.sources import NUM_CLASSES, load_gtsrb
from visionlab.data.classification.synthetic import make_synthetic_signs
from visionlab.data.in_memory import InMemoryDataModule
from visionlab.data.splits import group_split
from visionlab.errors import DataError

log = logging.getLogger(__name__)


class AugmentedSigns(Dataset):
    """The albumentations reference backend: the recipe per sample, a whole batch per ``__getitems__`` call;
    randomness is seeded from the batch's indices, so it does not depend on the worker count."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int, recipe: dict):
        self.images, self.labels, self.seed = images, labels, seed
        keep_opencv_single_threaded()
        geometry = {k: recipe[k] for k in ("crop", "rotation", "brightness", "contrast")}
        self.plain = train_transform(flip=False, **geometry)
        self.flippable = train_transform(flip=True, **geometry)
        self.symmetric = np.isin(labels, recipe["flip_classes"])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]):
        idx = np.asarray(indices)
        batch_seed = zlib.crc32(idx.tobytes()) ^ self.seed
        reseed(self.plain, batch_seed)
        reseed(self.flippable, batch_seed + 1)
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


class TrafficSignDataModule(InMemoryDataModule):
    """Shared pipeline; subclasses only say where the uint8 arrays come from (``load_arrays``).

    The recipe's values live in ``conf/data/common/signs.yaml`` only."""

    num_classes = NUM_CLASSES

    def __init__(self, batch_size: int, eval_batch_size: int, num_workers: int, val_fraction: float,
                 split_seed: int, seed: int, crop: int, rotation: float, brightness: float, contrast: float,
                 flip_classes: list[int], augment_backend: str = "batched", pin_memory: bool = False,
                 name: str | None = None):
        """``name``: the data config's short name (``data.name``, part of the default experiment name)."""
        super().__init__(batch_size, eval_batch_size, num_workers, seed, augment_backend, pin_memory)
        self.name = name
        self.val_fraction, self.split_seed, self.crop = val_fraction, split_seed, int(crop)
        self.recipe = {"crop": int(crop), "rotation": float(rotation), "brightness": float(brightness),
                       "contrast": float(contrast), "flip_classes": [int(c) for c in flip_classes]}
        self.arrays: dict[str, np.ndarray] | None = None
        self._train_arrays: tuple[np.ndarray, np.ndarray] | None = None

    def load_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of the images the model sees."""
        return self.crop, self.crop

    @property
    def channels(self) -> int | None:
        return None if self.arrays is None else int(self.arrays["x_train"].shape[-1])

    def load_splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        arrays = self.load_arrays()
        self._check_crop(arrays["x_train"].shape[1:3])
        self.arrays = arrays
        train_idx, val_idx = group_split(arrays["y_train"], arrays["track_train"], self.val_fraction,
                                         self.split_seed)
        x, y = arrays["x_train"], arrays["y_train"].astype(np.int64)
        self._train_arrays = (x[train_idx], y[train_idx])
        splits = {"train": self._train_arrays, "val": (center_crop(x[val_idx], self.crop), y[val_idx])}
        if "x_test" in arrays:
            splits["test"] = (center_crop(arrays["x_test"], self.crop), arrays["y_test"].astype(np.int64))
        log.info(
            "%s: %d train / %d val images (split by class+track, split_seed=%d), test: %s",
            self.description, len(train_idx), len(val_idx), self.split_seed,
            f"{len(arrays['y_test'])} images" if "test" in splits else "not available",
        )
        return splits

    def _check_crop(self, size: tuple[int, int]) -> None:
        """Training crops and evaluation centre crops are data.crop×data.crop: they must fit in the images."""
        height, width = (int(n) for n in size)
        if self.crop > min(height, width):
            raise DataError(f"data.crop={self.crop} is larger than the {height}×{width} images of "
                            f"{self.description}: set data.crop ≤ {min(height, width)} (and model.input_size to "
                            f"the same value), e.g. data.crop=28 model.input_size=28.")

    def batch_augment(self) -> SignBatchAugment:
        return SignBatchAugment(**self.recipe)

    def reference_dataset(self) -> AugmentedSigns:
        x, y = self._train_arrays
        return AugmentedSigns(x, y, seed=self.seed, recipe=self.recipe)


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
