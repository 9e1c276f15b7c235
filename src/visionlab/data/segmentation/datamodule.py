"""Binary-segmentation datamodules (256×256 by default): files (.npz or images/ + masks/) and a synthetic set.

The whole dataset stays in memory as uint8 (``InMemoryDataModule``): images N×H×W×C, masks N×H×W in {0,1}.
Training batches are augmented with the U-Net recipe on the training device (``augment``) or, as the reference
backend, per sample with albumentations in loader workers (``albumentations_recipe``). Val/test are not augmented.
Normalisation happens in the model, on the device.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from visionlab.checks import at_least, choose, expect, is_integer, is_number, one_of
from visionlab.data.albumentations_backend import keep_opencv_single_threaded, reseed
from visionlab.data.facts import DataFacts, class_names_or_ids
from visionlab.data.in_memory import InMemoryDataModule
from visionlab.data.loading import TensorPairs
from visionlab.data.segmentation.augment import SegmentationBatchAugment
from visionlab.data.segmentation.download import ensure_isbi2012
from visionlab.data.segmentation.sources import (
    FORMATS,
    SPLIT_MODES,
    SPLITS,
    complete_splits,
    load_segmentation,
)
from visionlab.data.segmentation.synthetic import make_synthetic_seg
from visionlab.data.splits import check_fraction
from visionlab.errors import DataError

log = logging.getLogger(__name__)


class AugmentedSegmentation(Dataset):
    """The albumentations reference backend: the recipe per sample, a whole batch per ``__getitems__`` call,
    seeded from the batch's indices so it depends neither on the worker count nor on where a run was resumed.
    ``length`` > the number of images shows every image several times per epoch (each time differently augmented)."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, seed: int, recipe: Mapping, length: int | None = None):
        self.images, self.masks, self.seed = images, masks, seed
        self.length = len(images) if length is None else int(length)
        from visionlab.data.segmentation.albumentations_recipe import train_transform  # lazily (~1.5 s)

        keep_opencv_single_threaded()
        self.transform = train_transform(**recipe)

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]):
        idx = np.asarray(indices, dtype=np.int64)
        reseed(self.transform, zlib.crc32(idx.tobytes()) ^ self.seed)
        xs, ys = [], []
        for i in idx % len(self.images):
            out = self.transform(image=self.images[i], mask=self.masks[i])
            xs.append(out["image"].reshape(self.images.shape[1:]))
            ys.append(out["mask"])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]


class SegmentationDataModule(InMemoryDataModule):
    """Shared pipeline; subclasses say where the arrays come from (``load_arrays``).

    The recipe's values live in ``conf/data/common/seg.yaml`` only."""

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        channels: int,
        image_size: int | None,
        val_fraction: float,
        test_fraction: float,
        split_seed: int,
        split_mode: str,
        seed: int,
        train_repeats: int,
        augment: bool,
        elastic: Mapping,
        flip: bool,
        shift: float,
        rotate: float,
        scale: float,
        brightness: float,
        contrast: float,
        p_affine: float,
        p_intensity: float,
        gamma: float = 0.0,
        p_gamma: float = 0.0,
        samples_per_epoch: int | None = None,
        augment_backend: str = "batched",
        pin_memory: bool = False,
        name: str | None = None,  # the data config's short name (data.name, part of the default experiment name)
        num_classes: int = 2,
        class_names: list[str] | None = None,
        input_size: int | None = None,
    ):
        super().__init__(batch_size, eval_batch_size, num_workers, seed, augment_backend, pin_memory, train_repeats,
                         samples_per_epoch)
        self.name = name
        # the one home of these values' checks (ConfigError, one line, before anything is written: checks.py)
        expect("data.num_classes", num_classes, one_of(2), "2: binary masks of 0 and 1", "data.num_classes=2")
        expect("data.channels", channels, one_of(1, 3), "1 (grey) or 3 (RGB)", "data.channels=1")
        expect("data.image_size", image_size, at_least(1), "an integer ≥ 1, or null to keep the stored size",
               "data.image_size=256", nullable=True)
        expect("data.split_seed", split_seed, is_integer, "an integer", "data.split_seed=0")
        choose("data.split_mode", split_mode, SPLIT_MODES)
        for key, value in (("data.shift", shift), ("data.rotate", rotate), ("data.scale", scale),
                           ("data.brightness", brightness), ("data.contrast", contrast)):
            expect(key, value, lambda v: is_number(v) and v >= 0, "a number ≥ 0", f"{key}=0.1")
        expect("data.gamma", gamma, lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)", "data.gamma=0.2")
        for key, value in (("data.p_affine", p_affine), ("data.p_intensity", p_intensity),
                           ("data.p_gamma", p_gamma), ("data.elastic.p", elastic["p"])):
            expect(key, value, lambda v: is_number(v) and 0 <= v <= 1, "a probability in [0, 1]", f"{key}=0.7")
        # input_size: the config's statement of the fact (``${.image_size}``); what this module serves is the size
        # of the images it loaded (``facts.input_size``), and the model checks that it fits
        self.val_fraction = check_fraction("data.val_fraction", val_fraction, allow_zero=True)
        self.test_fraction = check_fraction("data.test_fraction", test_fraction, allow_zero=True)
        self.class_names = class_names_or_ids(class_names, 2)
        self._facts: DataFacts | None = None
        self.requested_channels, self.image_size, self.augment = channels, image_size, bool(augment)
        self.split_seed = split_seed
        self.split_mode = split_mode
        self.recipe = {"elastic": {k: elastic[k] for k in ("alpha", "sigma", "p")}, "flip": flip, "shift": shift,
                       "rotate": rotate, "scale": scale, "brightness": brightness, "contrast": contrast,
                       "p_affine": p_affine, "p_intensity": p_intensity, "gamma": gamma, "p_gamma": p_gamma}
        self.arrays: dict[str, np.ndarray] | None = None
        self.notes: list[str] = []
        self.split_sizes = ""
        self.split_made = ""  # the splits carved out of train, with their cases (recorded in the description)

    def load_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the loaded images, for the model's size check."""
        return None if self.arrays is None else tuple(self.arrays["x_train"].shape[1:3])

    @property
    def channels(self) -> int | None:
        return None if self.arrays is None else int(self.arrays["x_train"].shape[-1])

    @property
    def facts(self) -> DataFacts | None:
        return self._facts

    def load_splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        arrays, notes, self.split_made = complete_splits(self.load_arrays(), self.val_fraction, self.test_fraction,
                                                         self.split_seed, self.description, self.split_mode)
        for note in notes:
            log.warning("%s", note)
        self.notes = notes
        shapes = {arrays[f"x_{s}"].shape[1:] for s in SPLITS if f"x_{s}" in arrays}
        if len(shapes) > 1:
            raise DataError(f"{self.description}: the splits have different image shapes {sorted(shapes)}; "
                            "set data.image_size to resize them to one size.")
        self.arrays = arrays
        self.split_sizes = " / ".join(f"{len(arrays[f'x_{s}'])} {s}" for s in SPLITS if f"x_{s}" in arrays)
        x = arrays["x_train"]
        self._facts = DataFacts("segmentation", 2, self.class_names, int(x.shape[-1]), tuple(x.shape[1:3]),
                                self.split_mode if self.split_made else "given",
                                self.split_made or f"the data's own splits: {self.split_sizes}")
        log.info("%s: %d train / %d val / %s test images of %s", self.description, len(x), len(arrays["x_val"]),
                 len(arrays["x_test"]) if "x_test" in arrays else "no", "×".join(map(str, x.shape[1:])))
        return {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS if f"x_{s}" in arrays}

    def batch_augment(self):
        if not self.augment:
            return lambda images, masks, generator: (images, masks)
        return SegmentationBatchAugment(**self.recipe)

    def reference_dataset(self) -> Dataset:
        x, y = self.arrays["x_train"], self.arrays["y_train"]
        order = np.arange(self.train_length()) % len(x)
        if not self.augment:
            return TensorPairs(x[order], y[order])
        return AugmentedSegmentation(x, y, seed=self.seed, recipe=self.recipe, length=len(order))


class FileSegmentationDataModule(SegmentationDataModule):
    """A course-layout .npz, a folder with images/ + masks/ (or train|val|test/images + masks), or a folder
    holding one .npz (``format: auto`` decides; ``npz``/``folder`` force one). ``download=True`` fetches the public
    ISBI 2012 training stack into ``data_dir`` first when it holds no data (``download.py``)."""

    def __init__(self, data_dir: str, format: str = "auto", download: bool = False, **kwargs):
        super().__init__(**kwargs)
        choose("data.format", format, FORMATS)
        self.data_dir, self.format, self.download = Path(data_dir), format, download
        self.source: str | None = None

    @property
    def description(self) -> str:
        made = f" (splits made from train: {self.split_made})" if self.split_made else ""
        return f"segmentation {self.source or self.data_dir}{made}"

    def load_arrays(self) -> dict[str, np.ndarray]:
        if self.download:
            ensure_isbi2012(self.data_dir)
        arrays, self.source = load_segmentation(self.data_dir, self.format, self.requested_channels, self.image_size)
        return arrays


class SyntheticSegmentationDataModule(SegmentationDataModule):
    """Procedural grayscale blob images and masks; needs no files and no network, deterministic from data_seed."""

    def __init__(self, n_train: int, n_val: int, n_test: int, data_seed: int, **kwargs):
        super().__init__(**kwargs)
        if self.requested_channels != 1:
            raise DataError("data.channels must be 1 for the synthetic segmentation set (it is grayscale).")
        self.synthetic = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": data_seed}

    @property
    def description(self) -> str:
        return f"synthetic segmentation ({self.image_size}×{self.image_size})"

    def load_arrays(self) -> dict[str, np.ndarray]:
        size = self.image_size
        if not size:
            raise DataError("data.image_size must be set for the synthetic segmentation set (e.g. 256).")
        arrays = make_synthetic_seg(size=int(size), **self.synthetic)
        if "x_train" not in arrays:
            raise DataError(f"data.n_train={self.synthetic['n_train']}: the synthetic set needs training images.")
        return arrays
