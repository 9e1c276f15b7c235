"""Segmentation datamodules (256×256 by default): files (.npz or images/ + masks/) and synthetic sets.

The whole dataset stays in memory as uint8 (``InMemoryDataModule``): images N×H×W×C, masks N×H×W in {0,1}
(``num_classes: 2``) or class indices 0..K−1 plus an optional ``ignore_index`` (``masks.py``: index or palette
masks). Training batches may be random crops (``data.crop``), a share centred on rarer classes (``crops.py``).
Training batches are augmented with the U-Net recipe on the training device (``augment``) or, as the reference
backend, per sample with albumentations in loader workers (``albumentations_recipe``). Val/test are not
augmented. Normalisation happens in the model, on the device."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from visionlab.config.checks import choose, expect, is_integer, is_number, one_of
from visionlab.config.errors import DataError
from visionlab.data.albumentations_backend import keep_opencv_single_threaded, reseed
from visionlab.data.facts import DataFacts, class_names_or_ids
from visionlab.data.in_memory import InMemoryDataModule
from visionlab.data.loading import TensorPairs
from visionlab.data.segmentation.augment import SegmentationBatchAugment
from visionlab.data.segmentation.crops import RandomCrops
from visionlab.data.segmentation.download import ensure_isbi2012
from visionlab.data.segmentation.masks import MaskSpec, mask_spec
from visionlab.data.segmentation.recipe import SegmentationRecipe
from visionlab.data.segmentation.sources import (
    FORMATS,
    SPLIT_MODES,
    SPLITS,
    complete_splits,
    load_segmentation,
    size_hw,
)
from visionlab.data.segmentation.synthetic import make_synthetic_multiclass, make_synthetic_seg
from visionlab.data.splits import check_fraction

log = logging.getLogger(__name__)


class AugmentedSegmentation(Dataset):
    """The albumentations reference backend: the recipe per sample, a whole batch per ``__getitems__`` call,
    seeded from the batch's indices so it depends neither on the worker count nor on where a run was resumed.
    ``length`` > the number of images shows every image several times per epoch (each time differently
    augmented)."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        seed: int,
        recipe: SegmentationRecipe,
        length: int | None = None,
        crops: RandomCrops | None = None,
    ):
        self.images, self.masks, self.seed, self.crops = images, masks, seed, crops
        self.length = len(images) if length is None else int(length)
        from visionlab.data.segmentation.albumentations_recipe import train_transform  # lazily (~1.5 s)

        keep_opencv_single_threaded()
        self.transform = train_transform(recipe)

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]):
        idx = np.asarray(indices, dtype=np.int64)
        key = zlib.crc32(idx.tobytes()) ^ self.seed
        reseed(self.transform, key)
        images, masks = self.images[idx % len(self.images)], self.masks[idx % len(self.images)]
        if self.crops is not None:  # the same crops the batched backend takes for this batch
            generator = torch.Generator().manual_seed(key)
            cropped = self.crops(torch.from_numpy(images), torch.from_numpy(masks), generator)
            images, masks = cropped[0].numpy(), cropped[1].numpy()
        xs, ys = [], []
        for image, mask in zip(images, masks):
            out = self.transform(image=np.ascontiguousarray(image), mask=np.ascontiguousarray(mask))
            xs.append(out["image"].reshape(image.shape))
            ys.append(out["mask"])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]


class SegmentationDataModule(InMemoryDataModule):
    """Shared pipeline; subclasses say where the arrays come from (``load_arrays``).

    Every value (the recipe's included) lives in ``conf/data/common/seg.yaml`` only: every argument is
    required."""

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
        samples_per_epoch: int | None,
        augment_backend: str,
        pin_memory: bool,
        name: str | None,  # the data config's short name (data.name, part of the default experiment name)
        num_classes: int,
        class_names: list[str] | None,
        input_size: int | None,
        ignore_index: int | None,
        palette: list | None,
        crop,
        p_oversample: float,
        oversample_classes: list[int] | None,
        **augmentation,
    ):
        """``augmentation``: every ``data.<setting>`` of the training augmentation (``recipe.py``)."""
        super().__init__(
            batch_size,
            eval_batch_size,
            num_workers,
            seed,
            augment_backend,
            pin_memory,
            train_repeats,
            samples_per_epoch,
        )
        self.name = name
        # the one home of these values' checks (ConfigError, one line, before anything is written: checks.py)
        self.mask_spec: MaskSpec = mask_spec(num_classes, ignore_index, palette)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        expect("data.channels", channels, one_of(1, 3), "1 (grey) or 3 (RGB)", "data.channels=1")
        side = "an integer ≥ 1 or [height, width]"
        expect(
            "data.image_size",
            image_size,
            _size_value,
            f"{side}, or null to keep the stored size",
            "data.image_size=256",
            nullable=True,
        )
        expect(
            "data.crop",
            crop,
            _size_value,
            f"{side} (random training crops), or null for whole images",
            "data.crop=[192, 256]",
            nullable=True,
        )
        expect(
            "data.p_oversample",
            p_oversample,
            lambda v: is_number(v) and 0 <= v <= 1,
            "a probability in [0, 1] (the share of crops centred on a rarer class)",
            "data.p_oversample=0.33",
        )
        expect(
            "data.oversample_classes",
            oversample_classes,
            lambda v: (
                isinstance(v, Sequence)
                and not isinstance(v, str)
                and all(is_integer(c) and 0 <= c < num_classes for c in v)
            ),
            f"a list of class indices in 0..{num_classes - 1}, or null for every class but the most frequent",
            "data.oversample_classes=[2, 6, 9, 10]",
            nullable=True,
        )
        self.crop = None if crop is None else size_hw(crop)
        self.p_oversample = float(p_oversample)
        self.oversample_classes = None if oversample_classes is None else tuple(oversample_classes)
        expect("data.split_seed", split_seed, is_integer, "an integer", "data.split_seed=0")
        choose("data.split_mode", split_mode, SPLIT_MODES)
        self.recipe = SegmentationRecipe.from_config(augmentation)
        # input_size: the config's statement of the fact (``${.image_size}``); what this module serves is the
        # size of the images it loaded (``facts.input_size``), and the model checks that it fits
        self.val_fraction = check_fraction("data.val_fraction", val_fraction, allow_zero=True)
        self.test_fraction = check_fraction("data.test_fraction", test_fraction, allow_zero=True)
        self.class_names = class_names_or_ids(class_names, num_classes)
        self._facts: DataFacts | None = None
        self.requested_channels, self.image_size, self.augment = channels, image_size, bool(augment)
        self.split_seed = split_seed
        self.split_mode = split_mode
        self.arrays: dict[str, np.ndarray] | None = None
        self.notes: list[str] = []
        self.split_sizes = ""
        self.split_made = ""  # the splits carved out of train, with their cases (recorded in the description)
        self.case_names: dict[
            str, np.ndarray
        ] = {}  # per split: where each case came from (file or npz index)

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
        arrays, notes, self.split_made = complete_splits(
            self.load_arrays(),
            self.val_fraction,
            self.test_fraction,
            self.split_seed,
            self.description,
            self.split_mode,
        )
        for note in notes:
            log.warning("%s", note)
        self.notes = notes
        self.case_names = {s: arrays.pop(f"names_{s}") for s in SPLITS if f"names_{s}" in arrays}
        shapes = {arrays[f"x_{s}"].shape[1:] for s in SPLITS if f"x_{s}" in arrays}
        if len(shapes) > 1:
            raise DataError(
                f"{self.description}: the splits have different image shapes {sorted(shapes)}; "
                "set data.image_size to resize them to one size."
            )
        self.arrays = arrays
        self.split_sizes = " / ".join(f"{len(arrays[f'x_{s}'])} {s}" for s in SPLITS if f"x_{s}" in arrays)
        x = arrays["x_train"]
        if self.crop is not None and (self.crop[0] > x.shape[1] or self.crop[1] > x.shape[2]):
            raise DataError(
                f"{self.description}: data.crop={list(self.crop)} is larger than the training images "
                f"({x.shape[1]}×{x.shape[2]}); set a smaller data.crop or data.crop=null."
            )
        self._facts = DataFacts(
            "segmentation",
            self.num_classes,
            self.class_names,
            int(x.shape[-1]),
            tuple(x.shape[1:3]),
            self.split_mode if self.split_made else "given",
            self.split_made or f"the data's own splits: {self.split_sizes}",
        )
        log.info(
            "%s: %d train / %d val / %s test images of %s",
            self.description,
            len(x),
            len(arrays["x_val"]),
            len(arrays["x_test"]) if "x_test" in arrays else "no",
            "×".join(map(str, x.shape[1:])),
        )
        return {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS if f"x_{s}" in arrays}

    def case_source(self, split: str, index: int) -> str:
        """Where case ``index`` of ``split`` came from (a file relative to the data folder, ``x_test[3]``), or
        ""."""
        names = self.case_names.get(split)
        return str(names[index]) if names is not None and 0 <= index < len(names) else ""

    def class_pixel_counts(self) -> np.ndarray:
        """Pixels of each class in the training masks (ignored pixels not counted): ``class_weights:
        auto``."""
        counts = np.bincount(self.arrays["y_train"].reshape(-1), minlength=256)
        return counts[: self.num_classes].astype(np.int64)

    def crops(self) -> RandomCrops | None:
        """The training crops (``data.crop``), centred on one of ``oversample_classes`` with ``p_oversample``;
        those classes default to every class but the most frequent one in the training masks."""
        if self.crop is None:
            return None
        classes = self.oversample_classes
        if classes is None:
            counts = self.class_pixel_counts()
            classes = tuple(c for c in range(self.num_classes) if c != int(counts.argmax()))
        return RandomCrops(self.crop, self.p_oversample, classes)

    def batch_augment(self):
        crops = self.crops()
        augment = SegmentationBatchAugment(self.recipe) if self.augment else None

        def crop_then_augment(images, masks, generator):
            if crops is not None:
                images, masks = crops(images, masks, generator)
            return (images, masks) if augment is None else augment(images, masks, generator)

        return crop_then_augment

    def reference_dataset(self) -> Dataset:
        x, y = self.arrays["x_train"], self.arrays["y_train"]
        order = np.arange(self.train_length()) % len(x)
        if not self.augment and self.crop is None:
            return TensorPairs(x[order], y[order])
        recipe = self.recipe if self.augment else self.recipe.off()
        return AugmentedSegmentation(
            x, y, seed=self.seed, recipe=recipe, length=len(order), crops=self.crops()
        )


class FileSegmentationDataModule(SegmentationDataModule):
    """A course-layout .npz, a folder with images/ + masks/ (or train|val|test/images + masks), or a folder
    holding one .npz (``format: auto`` decides; ``npz``/``folder`` force one). ``download=True`` fetches the
    public ISBI 2012 training stack into ``data_dir`` first when it holds no data (``download.py``)."""

    def __init__(self, data_dir: str, format: str, download: bool, **kwargs):
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
        arrays, self.source = load_segmentation(
            self.data_dir, self.format, self.requested_channels, self.image_size, self.mask_spec
        )
        return arrays


def _size_value(value) -> bool:
    """One side or [height, width], each an integer ≥ 1."""
    if is_integer(value):
        return value >= 1
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(is_integer(v) and v >= 1 for v in value)
    )


class SyntheticSegmentationDataModule(SegmentationDataModule):
    """Procedural grayscale blob images and masks; needs no files and no network, deterministic from
    data_seed. With ``num_classes`` K ≥ 3: shapes of K − 1 kinds on a background
    (``synthetic.make_synthetic_multiclass``)."""

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
        if not size or not is_integer(size):
            raise DataError(
                "data.image_size must be one integer side for the synthetic segmentation set (e.g. 256)."
            )
        if self.num_classes > 2:
            arrays = make_synthetic_multiclass(
                size=int(size), num_classes=self.num_classes, ignore_index=self.ignore_index, **self.synthetic
            )
        else:
            arrays = make_synthetic_seg(size=int(size), **self.synthetic)
        if "x_train" not in arrays:
            raise DataError(
                f"data.n_train={self.synthetic['n_train']}: the synthetic set needs training images."
            )
        return arrays
