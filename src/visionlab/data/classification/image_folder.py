"""Your own images: ``data=image_folder data.data_dir=<folder>`` (torchvision's ImageFolder layout,
``folders.py``).

The same fast path as the sign sets (``ClassificationDataModule``): decoded once into a uint8 cache, resident
in memory (on the GPU on a GPU), augmented as whole batches on the training device. The class names are the
folder names (``data.class_names``, which the config lists from the folder at composition), validation and
test are split from ``train`` stratified by class (``data.split_policy=stratified``) or by groups of file
names (``data.split_policy=group``, ``data.group_pattern``) unless the folder holds ``val/``/``test/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionlab.config.checks import at_least, choose, expect
from visionlab.config.errors import DataError
from visionlab.data.classification.datamodule import ClassificationDataModule
from visionlab.data.classification.folders import class_folders, groups_from_names, load_image_folder

SPLIT_POLICIES = ("stratified", "group")


class ImageFolderDataModule(ClassificationDataModule):
    def __init__(
        self,
        data_dir: str,
        cache_dir: str,
        image_size: int,
        split_policy: str,
        group_pattern: str,
        follow_symlinks: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        choose("data.split_policy", split_policy, SPLIT_POLICIES)
        expect(
            "data.image_size",
            image_size,
            at_least(1),
            "an integer ≥ 1 (the side images are resized to)",
            "data.image_size=64",
        )
        expect(
            "data.follow_symlinks",
            follow_symlinks,
            lambda v: isinstance(v, bool),
            "true or false",
            "data.follow_symlinks=false",
        )
        self.follow_symlinks = follow_symlinks
        self.data_dir, self.cache_dir = Path(str(data_dir)).expanduser(), Path(str(cache_dir)).expanduser()
        self.image_size, self.split_policy, self.group_pattern = image_size, split_policy, group_pattern
        self.folder_classes: list[str] | None = None

    @property
    def description(self) -> str:
        return f"image folder {self.data_dir}"

    def own_class_names(self) -> list[str] | None:
        return self.folder_classes

    def load_arrays(self) -> dict[str, np.ndarray]:
        self.folder_classes = class_folders(self.data_dir)
        if len(self.folder_classes) != self.num_classes:
            raise DataError(
                f"{self.description}: {len(self.folder_classes)} class folders "
                f"({', '.join(self.folder_classes[:10])}{', …' if len(self.folder_classes) > 10 else ''}) "
                f"but data.num_classes={self.num_classes}; leave data.num_classes to the folder (its "
                "default) or set it to the number of class folders."
            )
        arrays = load_image_folder(
            self.data_dir,
            self.cache_dir,
            self.image_size,
            self.requested_channels,
            self.folder_classes,
            self.follow_symlinks,
        )
        if self.split_policy == "group":
            arrays["group_train"] = groups_from_names(arrays["files_train"], self.group_pattern)
        return {key: value for key, value in arrays.items() if not key.startswith("files_")}
