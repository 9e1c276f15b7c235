"""CIFAR-10 through torchvision's downloader (``data=cifar10 data.download=true``), on the
image-classification fast path: 50,000 training images (validation split from them, stratified by class) and
the official 10,000 test images, uint8 32×32 RGB, resized once to ``data.image_size``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionlab.config.checks import at_least, expect
from visionlab.config.errors import DataError
from visionlab.data.classification.datamodule import ClassificationDataModule, resize_square

HOW_TO_GET_DATA = (
    "data.download=true lets torchvision download CIFAR-10 into data.data_dir (needs network, "
    "163 MB); or put torchvision's copy (the cifar-10-batches-py folder) in data.data_dir"
)


class CIFAR10DataModule(ClassificationDataModule):
    def __init__(self, data_dir: str, image_size: int, download: bool, **kwargs):
        super().__init__(**kwargs)
        expect(
            "data.image_size",
            image_size,
            at_least(1),
            "an integer ≥ 1 (the side images are resized to)",
            "data.image_size=36",
        )
        self.data_dir, self.image_size, self.download = Path(str(data_dir)).expanduser(), image_size, download

    @property
    def description(self) -> str:
        return f"CIFAR-10 ({self.data_dir})"

    def load_arrays(self) -> dict[str, np.ndarray]:
        from torchvision.datasets import CIFAR10

        arrays = {}
        for split, train in (("train", True), ("test", False)):
            try:  # torchvision checks every file's md5 before it reads it
                dataset = CIFAR10(str(self.data_dir), train=train, download=self.download)
            except Exception as exc:
                raise DataError(
                    f"{self.description}: cannot load the {split} split ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}). {HOW_TO_GET_DATA}."
                ) from exc
            arrays[f"x_{split}"] = resize_square(np.asarray(dataset.data, np.uint8), self.image_size)
            arrays[f"y_{split}"] = np.asarray(dataset.targets, np.int64)
        return arrays
