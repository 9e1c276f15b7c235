"""Binary-segmentation datamodules (256×256 by default): files (.npz or images/ + masks/) and a synthetic set.

The whole dataset stays in memory as uint8: images N×H×W×C, masks N×H×W in {0,1}. Training batches are augmented
in DataLoader workers with the U-Net recipe (``seg_transforms``), seeded per batch from the batch's indices so
augmentation depends neither on the worker count nor on where a run was resumed. Val/test are not augmented.
Normalisation happens in the model, on the device.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from visionlab.data.loading import TensorPairs, batch_loader
from visionlab.data.sampling import EpochSeededSampler
from visionlab.data.segmentation.albumentations_recipe import train_transform
from visionlab.data.segmentation.sources import SPLITS, complete_splits, load_segmentation
from visionlab.data.segmentation.synthetic import make_synthetic_seg
from visionlab.errors import DataError

log = logging.getLogger(__name__)


class AugmentedSegmentation(Dataset):
    """Training pairs, augmented per batch through ``__getitems__``. ``repeats`` > 1 shows every image that many
    times per epoch (each time differently augmented), useful for tiny sets such as ISBI's 30 images."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, seed: int, recipe: Mapping, repeats: int = 1):
        self.images, self.masks, self.seed, self.repeats = images, masks, seed, max(1, int(repeats))
        self.transform = train_transform(**recipe)

    def __len__(self) -> int:
        return len(self.images) * self.repeats

    def __getitems__(self, indices: list[int]):
        idx = np.asarray(indices, dtype=np.int64)
        self.transform.set_random_seed((zlib.crc32(idx.tobytes()) ^ self.seed) & 0xFFFFFFFF)
        xs, ys = [], []
        for i in idx % len(self.images):
            out = self.transform(image=self.images[i], mask=self.masks[i])
            xs.append(out["image"].reshape(self.images.shape[1:]))
            ys.append(out["mask"])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]


class SegmentationDataModule(pl.LightningDataModule):
    """Shared pipeline; subclasses say where the arrays come from (``load_arrays``)."""

    def __init__(
        self,
        batch_size: int = 4,
        eval_batch_size: int = 8,
        num_workers: int = 1,
        channels: int = 1,
        image_size: int | None = 256,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        seed: int = 0,
        train_repeats: int = 1,
        augment: bool = True,
        elastic: Mapping | None = None,
        flip: bool = True,
        shift: float = 0.05,
        rotate: float = 10.0,
        scale: float = 0.05,
        brightness: float = 0.1,
        contrast: float = 0.1,
        pin_memory: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.elastic = dict(elastic) if elastic is not None else {"alpha": 500.0, "sigma": 12.0, "p": 0.7}
        self.arrays: dict[str, np.ndarray] | None = None
        self.train_set = self.val_set = self.test_set = None
        self.test_available = False
        self.notes: list[str] = []
        self.split_sizes = ""

    def load_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def description(self) -> str:
        return type(self).__name__

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the loaded images, for the model's size check."""
        return None if self.arrays is None else tuple(self.arrays["x_train"].shape[1:3])

    @property
    def channels(self) -> int | None:
        return None if self.arrays is None else int(self.arrays["x_train"].shape[-1])

    @property
    def recipe(self) -> dict:
        hp = self.hparams
        return {"elastic": self.elastic, "flip": hp.flip, "shift": hp.shift, "rotate": hp.rotate, "scale": hp.scale,
                    "brightness": hp.brightness, "contrast": hp.contrast}

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is not None:
            return
        hp = self.hparams
        arrays, notes = complete_splits(self.load_arrays(), hp.val_fraction, hp.test_fraction, hp.split_seed,
                                        self.description)
        for note in notes:
            log.warning("%s", note)
        self.notes = notes
        shapes = {arrays[f"x_{s}"].shape[1:] for s in SPLITS if f"x_{s}" in arrays}
        if len(shapes) > 1:
            raise DataError(f"{self.description}: the splits have different image shapes {sorted(shapes)}; "
                            "set data.image_size to resize them to one size.")
        self.arrays = arrays
        self.split_sizes = " / ".join(f"{len(arrays[f'x_{s}'])} {s}" for s in SPLITS if f"x_{s}" in arrays)
        x, y = arrays["x_train"], arrays["y_train"]
        if hp.augment:
            self.train_set = AugmentedSegmentation(x, y, seed=hp.seed, recipe=self.recipe, repeats=hp.train_repeats)
        else:
            self.train_set = TensorPairs(x, y)
        self.val_set = TensorPairs(arrays["x_val"], arrays["y_val"])
        self.test_available = "x_test" in arrays
        if self.test_available:
            self.test_set = TensorPairs(arrays["x_test"], arrays["y_test"])
        log.info("%s: %d train / %d val / %s test images of %s", self.description, len(x), len(arrays["x_val"]),
                 len(arrays["x_test"]) if self.test_available else "no", "×".join(map(str, x.shape[1:])))

    def _loader(self, dataset, batch_size: int, sampler=None, workers: int | None = None) -> DataLoader:
        workers = self.hparams.num_workers if workers is None else workers
        return batch_loader(dataset, batch_size, workers, self.hparams.pin_memory, sampler)

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSeededSampler(len(self.train_set), seed=self.hparams.seed)
        return self._loader(self.train_set, self.hparams.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.eval_batch_size, workers=0)  # in memory, nothing to do

    def test_dataloader(self) -> DataLoader:
        if not self.test_available:
            raise RuntimeError("No test split is available for this dataset.")
        return self._loader(self.test_set, self.hparams.eval_batch_size, workers=0)


class FileSegmentationDataModule(SegmentationDataModule):
    """A course-layout .npz, a folder with images/ + masks/ (or train|val|test/images + masks), or a folder
    holding one .npz (``format: auto`` decides; ``npz``/``folder`` force one)."""

    def __init__(self, data_dir: str, format: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.data_dir, self.format = Path(data_dir), format
        self.source: str | None = None

    @property
    def description(self) -> str:
        made = f" (splits made from train: {self.split_sizes})" if self.notes else ""
        return f"segmentation {self.source or self.data_dir}{made}"

    def load_arrays(self) -> dict[str, np.ndarray]:
        arrays, self.source = load_segmentation(self.data_dir, self.format, self.hparams.channels,
                                                self.hparams.image_size)
        return arrays


class SyntheticSegmentationDataModule(SegmentationDataModule):
    """Procedural grayscale blob images and masks; needs no files and no network, deterministic from data_seed."""

    def __init__(self, n_train: int = 48, n_val: int = 12, n_test: int = 16, data_seed: int = 0, **kwargs):
        kwargs.setdefault("image_size", 256)
        super().__init__(**kwargs)
        if kwargs.get("channels", 1) != 1:
            raise DataError("data.channels must be 1 for the synthetic segmentation set (it is grayscale).")
        self.synthetic = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": data_seed}

    @property
    def description(self) -> str:
        return f"synthetic segmentation ({self.hparams.image_size}×{self.hparams.image_size})"

    def load_arrays(self) -> dict[str, np.ndarray]:
        size = self.hparams.image_size
        if not size:
            raise DataError("data.image_size must be set for the synthetic segmentation set (e.g. 256).")
        arrays = make_synthetic_seg(size=int(size), **self.synthetic)
        if "x_train" not in arrays:
            raise DataError(f"data.n_train={self.synthetic['n_train']}: the synthetic set needs training images.")
        return arrays
