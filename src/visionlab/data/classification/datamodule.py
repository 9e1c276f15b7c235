"""Traffic-sign classification datamodules: real GTSRB and the embedded synthetic set share one pipeline.

The whole dataset stays in memory as uint8 (``InMemoryDataModule``); training batches are augmented on the
training device (``augment.SignBatchAugment``) or, as the reference backend, per sample with albumentations;
evaluation uses a fixed centre crop. Normalisation happens in the model, on the device."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from visionlab.config.checks import at_least, expect, is_integer, is_number, one_of
from visionlab.config.errors import ConfigError, DataError
from visionlab.data.albumentations_backend import keep_opencv_single_threaded, reseed
from visionlab.data.classification.augment import SignBatchAugment
from visionlab.data.classification.contrast import check_method, normalise_contrast
from visionlab.data.classification.sources import load_gtsrb
from visionlab.data.classification.synthetic import class_names as synthetic_class_names
from visionlab.data.classification.synthetic import make_synthetic_signs
from visionlab.data.facts import DataFacts, class_names_or_ids
from visionlab.data.in_memory import InMemoryDataModule
from visionlab.data.splits import check_fraction, held_out_split

log = logging.getLogger(__name__)


class AugmentedSigns(Dataset):
    """The albumentations reference backend: the recipe per sample, a whole batch per ``__getitems__`` call;
    randomness is seeded from the batch's indices, so it does not depend on the worker count."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int, recipe: dict):
        self.images, self.labels, self.seed = images, labels, seed
        from visionlab.data.classification.albumentations_recipe import train_transform  # lazily (~1.5 s)

        keep_opencv_single_threaded()
        geometry = {k: recipe[k] for k in ("crop", "rotation", "brightness", "contrast", "scale")}
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


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 N×H×W×C with C in (1, 3, 4) → ``channels`` (grey repeated to RGB, RGB to grey by ITU-R 601 luma,
    alpha dropped)."""
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 4:
        images = images[..., :3]
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.ascontiguousarray(np.repeat(images, 3, axis=-1))
    grey = images.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None]


def resize_square(images: np.ndarray, size: int | None) -> np.ndarray:
    """uint8 N×H×W×C resized to N×size×size×C (area when shrinking, bilinear when growing); None keeps
    them."""
    if size is None or images.shape[1:3] == (size, size):
        return images
    import cv2

    interp = cv2.INTER_AREA if images.shape[1] > size or images.shape[2] > size else cv2.INTER_LINEAR
    out = np.empty((len(images), size, size, images.shape[3]), np.uint8)
    for i, image in enumerate(images):
        out[i] = cv2.resize(image, (size, size), interpolation=interp).reshape(size, size, -1)
    return out


def center_crop(images: np.ndarray, crop: int) -> np.ndarray:
    """Evaluation images: the fixed centre ``crop``×``crop`` of N×H×W×C images."""
    off = (images.shape[1] - crop) // 2
    return np.ascontiguousarray(images[:, off : off + crop, off : off + crop])


FLIP_ALL = "all"


def check_flip_classes(flip, num_classes: int) -> list[int]:
    """The one check of ``data.flip_classes``: a list of class ids in [0, num_classes) (or ``all``)."""
    is_list = isinstance(flip, Sequence) and not isinstance(flip, str)
    shown = list(flip) if is_list else flip
    if not is_list or not all(is_integer(c) for c in flip):
        raise ConfigError(
            f"data.flip_classes={shown!r} is not valid: expected a list of class ids or all; "
            "e.g. data.flip_classes=[11,12,13] (or [] to flip none)."
        )
    bad = [c for c in flip if c < 0 or c >= num_classes]
    if bad:
        raise ConfigError(
            f"data.flip_classes={shown!r} is not valid: {', '.join(map(str, bad))} "
            f"{'is not a class id' if len(bad) == 1 else 'are not class ids'}; class ids are in "
            f"[0, {num_classes}) (data.num_classes={num_classes}). Pass only the ids of mirror-symmetric "
            "classes, e.g. data.flip_classes=[11,12,13]."
        )
    return list(flip)


class ClassificationDataModule(InMemoryDataModule):
    """The image-classification pipeline every classification source shares; subclasses only say where the
    uint8 arrays come from (``load_arrays``: ``x_train``/``y_train``, optionally ``group_train`` (or GTSRB's
    ``track_train``), ``x_val``/``y_val``, ``x_test``/``y_test``).

    Facts: ``num_classes`` (labels must lie in 0..num_classes-1), ``class_names`` (null: the source's own
    names, else the ids), ``channels`` (grey sources are repeated to 3 channels, RGB ones converted to grey
    for 1), and ``input_size`` (the model's input: the ``crop``). Split policy: the source's own validation
    split when it has one, else whole groups on one side when it has groups (``group``), else random
    stratified by class (``stratified``); ``test_fraction`` > 0 also carves a test split when the source has
    none. Augmentation: the batched sign recipe (rotation, random crop, brightness/contrast, a horizontal flip
    for ``flip_classes``, a list of ids or ``all``). Every value lives in ``conf/data/common/*.yaml`` and
    nowhere in Python: every argument is required."""

    task = "classification"

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        val_fraction: float,
        split_seed: int,
        seed: int,
        crop: int,
        rotation: float,
        brightness: float,
        contrast: float,
        flip_classes: list[int] | str,
        num_classes: int,
        class_names: list[str] | None,
        channels: int,
        input_size: int | None,
        test_fraction: float,
        augment_backend: str,
        pin_memory: bool,
        name: str | None,
        scale: float,
        contrast_norm: str,
    ):
        """``name``: the data config's short name (``data.name``, part of the default experiment name);
        ``contrast_norm``: per-image contrast normalisation of every split at load time (``contrast``)."""
        super().__init__(batch_size, eval_batch_size, num_workers, seed, augment_backend, pin_memory)
        self.name = name
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        self.test_fraction = check_fraction("data.test_fraction", test_fraction, allow_zero=True)
        expect("data.split_seed", split_seed, is_integer, "an integer", "data.split_seed=0")
        self.split_seed = split_seed
        self.crop = expect("data.crop", crop, at_least(1), "an integer ≥ 1 (pixels)", "data.crop=28")
        # input_size: the config's statement of the fact for the model to follow (``${.crop}``); what this
        # module serves is its crop (``facts.input_size``), and the model checks that it fits
        # (``check_data_fits``)
        expect("data.channels", channels, one_of(1, 3), "1 (grey) or 3 (RGB)", "data.channels=3")
        expect("data.num_classes", num_classes, at_least(2), "an integer ≥ 2", "data.num_classes=10")
        for key, value in (
            ("data.rotation", rotation),
            ("data.brightness", brightness),
            ("data.contrast", contrast),
        ):
            expect(key, value, lambda v: is_number(v) and v >= 0, "a number ≥ 0", f"{key}=0.2")
        expect(
            "data.scale",
            scale,
            lambda v: is_number(v) and 0 <= v < 1,
            "a number in [0, 1) (zoom ± scale)",
            "data.scale=0.1",
        )
        self.num_classes, self.requested_channels = num_classes, channels
        self.contrast_norm = check_method(contrast_norm)
        self.stated_class_names = (
            None if class_names is None else class_names_or_ids(class_names, num_classes)
        )
        flips = (
            range(num_classes) if flip_classes == FLIP_ALL else check_flip_classes(flip_classes, num_classes)
        )
        self.recipe = {
            "crop": int(crop),
            "rotation": float(rotation),
            "brightness": float(brightness),
            "contrast": float(contrast),
            "flip_classes": [int(c) for c in flips],
            "scale": float(scale),
        }
        self.arrays: dict[str, np.ndarray] | None = None
        self._train_arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._facts: DataFacts | None = None

    def load_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def own_class_names(self) -> list[str] | None:
        """The source's names for its classes (label order), when it has any."""
        return None

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of the images the model sees."""
        return self.crop, self.crop

    @property
    def channels(self) -> int | None:
        return None if self.arrays is None else int(self.arrays["x_train"].shape[-1])

    @property
    def facts(self) -> DataFacts | None:
        return self._facts

    def _check_labels(self, arrays: dict[str, np.ndarray]) -> None:
        for split in ("train", "val", "test"):
            y = arrays.get(f"y_{split}")
            if y is not None and len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                bad = y[(y < 0) | (y >= self.num_classes)][:5].tolist()
                raise DataError(
                    f"{self.description}: {split} labels outside 0..{self.num_classes - 1} (e.g. {bad}) "
                    f"but data.num_classes={self.num_classes}; set data.num_classes to the number of "
                    "classes the data has."
                )

    def load_splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        arrays = {key: value for key, value in self.load_arrays().items()}
        for split in ("train", "val", "test"):
            if f"x_{split}" in arrays:
                arrays[f"x_{split}"] = normalise_contrast(
                    to_channels(arrays[f"x_{split}"], self.requested_channels), self.contrast_norm
                )
                arrays[f"y_{split}"] = np.asarray(arrays[f"y_{split}"]).astype(np.int64)
        self._check_labels(arrays)
        self._check_crop(arrays["x_train"].shape[1:3])
        self.arrays = arrays
        x, y = arrays["x_train"], arrays["y_train"]
        groups = arrays.get("group_train", arrays.get("track_train"))
        if "x_val" in arrays:
            policy, split = "given", "the data's own validation split"
            train_idx, val_idx, test_idx = np.arange(len(y)), None, np.zeros(0, np.int64)
        else:
            policy = "group" if groups is not None else "stratified"
            carve_test = self.test_fraction if "x_test" not in arrays else 0.0
            train_idx, val_idx, test_idx = held_out_split(
                y,
                groups if groups is not None else np.arange(len(y)),
                self.val_fraction,
                carve_test,
                self.split_seed,
            )
            made = f"{len(train_idx)} train / {len(val_idx)} val" + (
                f" / {len(test_idx)} test" if len(test_idx) else ""
            )
            split = (
                f"{made} ({'whole groups' if groups is not None else 'random'}, stratified by class; "
                f"data.val_fraction={self.val_fraction:g}"
                + (f", data.test_fraction={carve_test:g}" if carve_test else "")
                + f", data.split_seed={self.split_seed})"
            )
        self._train_arrays = (x[train_idx], y[train_idx])
        splits = {"train": self._train_arrays}
        splits["val"] = (
            (center_crop(x[val_idx], self.crop), y[val_idx])
            if val_idx is not None
            else (center_crop(arrays["x_val"], self.crop), arrays["y_val"])
        )
        if "x_test" in arrays:
            splits["test"] = (center_crop(arrays["x_test"], self.crop), arrays["y_test"])
            split += "; test: the data's own test split"
        elif len(test_idx):
            splits["test"] = (center_crop(x[test_idx], self.crop), y[test_idx])
        if len(splits["train"][1]) == 0:
            raise DataError(
                f"{self.description}: the training split is empty; add images or lower "
                "data.val_fraction / data.test_fraction."
            )
        for name in [name for name, (_, labels) in splits.items() if len(labels) == 0]:
            log.warning(
                "%s: the %s split is empty (too few images or groups per class to hold some out).",
                self.description,
                name,
            )
        names = self.stated_class_names if self.stated_class_names is not None else self.own_class_names()
        self._facts = DataFacts(
            self.task,
            self.num_classes,
            class_names_or_ids(names, self.num_classes),
            int(x.shape[-1]),
            (self.crop, self.crop),
            policy,
            split,
            "track" if policy == "group" and "track_train" in arrays else "",  # GTSRB's groups: tracks
        )
        log.info(
            "%s: %d train / %d val images (%s), test: %s",
            self.description,
            len(splits["train"][1]),
            len(splits["val"][1]),
            split,
            f"{len(splits['test'][1])} images" if "test" in splits else "not available",
        )
        return splits

    def _check_crop(self, size: tuple[int, int]) -> None:
        """Training crops and evaluation centre crops are data.crop×data.crop: they must fit in the images."""
        height, width = (int(n) for n in size)
        if self.crop > min(height, width):
            raise DataError(
                f"data.crop={self.crop} is larger than the {height}×{width} images of "
                f"{self.description}: set data.crop ≤ {min(height, width)} (the model's input follows "
                "it), e.g. data.crop=28."
            )

    def batch_augment(self) -> SignBatchAugment:
        return SignBatchAugment(**self.recipe)

    def reference_dataset(self) -> AugmentedSigns:
        x, y = self._train_arrays
        return AugmentedSigns(x, y, seed=self.seed, recipe=self.recipe)


class TrafficSignDataModule(ClassificationDataModule):
    """Traffic signs (GTSRB-shaped: 43 classes, tracks): the validation split keeps whole (class, track)
    groups on one side. The recipe's values live in ``conf/data/common/signs.yaml`` only."""


class GTSRBDataModule(TrafficSignDataModule):
    """Real GTSRB from ``data_dir`` (prepared .npz files, the official layout, or a download)."""

    def __init__(self, data_dir: str, cache_dir: str, download: bool, **kwargs):
        super().__init__(**kwargs)
        self.data_dir, self.cache_dir, self.download = Path(data_dir), Path(cache_dir), download

    @property
    def description(self) -> str:
        return f"GTSRB ({self.data_dir})"

    def load_arrays(self) -> dict[str, np.ndarray]:
        return load_gtsrb(self.data_dir, self.cache_dir, self.download, self.num_classes)


class SyntheticSignsDataModule(TrafficSignDataModule):
    """The embedded synthetic 43-class set; needs no files and no network."""

    def __init__(
        self,
        tracks_per_class: int,
        frames_per_track: int,
        test_tracks_per_class: int,
        data_seed: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.synthetic = dict(
            tracks_per_class=tracks_per_class,
            frames_per_track=frames_per_track,
            test_tracks_per_class=test_tracks_per_class,
            seed=data_seed,
        )

    @property
    def description(self) -> str:
        return "synthetic signs"

    def own_class_names(self) -> list[str]:
        return synthetic_class_names()

    def load_arrays(self) -> dict[str, np.ndarray]:
        arrays = make_synthetic_signs(**self.synthetic)
        for key in ("y_train", "track_train", "y_test"):
            arrays[key] = arrays[key].astype(np.int64)
        return arrays
