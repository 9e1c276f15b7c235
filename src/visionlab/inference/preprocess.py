"""Image files as a model's inputs, read the way its training read its data (the training code's own
functions, so a file predicted here is what the same file was in training): ``read_input`` returns the uint8
H×W×C input and what was done to the file (its size, mode and conversion, for predictions.csv).

Classification: ``fit`` (image_folder: shorter side to ``data.image_size``, centre square, grey or RGB),
``stretch32`` (GTSRB, the synthetic signs, CIFAR-10: stretched to 32×32 as GTSRB's files are, then to
``data.image_size`` when set); then the per-image contrast normalisation (``data.contrast_norm``) and the
evaluation centre crop (``data.crop``). Segmentation: the file as stored, grey or RGB (alpha dropped, RGB to
grey by luma), resized to ``data.image_size`` (area when shrinking, bilinear when growing) when set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionlab.config.errors import DataError
from visionlab.inference.loading import InputFacts

GTSRB_SIDE = 32


@dataclass(frozen=True)
class Input:
    image: np.ndarray  # uint8 H×W×C: what the model receives
    width: int  # the file's own size
    height: int
    mode: str  # the file's PIL mode (L, RGB, RGBA, P, I;16, …)
    conversion: str  # what was done to channels/mode ("none" when the file already was what the model takes)


def describe_conversion(mode: str, channels: int, reader: str = "fit") -> str:
    """How training converted an image of PIL ``mode`` to ``channels`` channels, in words."""
    wanted = "L" if channels == 1 else "RGB"
    if mode == wanted:
        return "none"
    greyish = mode in ("L", "LA", "P", "PA", "I;16", "I", "F", "1")
    notes = []
    if reader == "segmentation":  # training took the file's stored values (np.array of the image)
        if channels == 1 and mode in ("RGB", "RGBA"):
            notes.append("to grey (ITU-R 601 luma)")
        if channels == 3 and greyish:
            notes.append("grey repeated to RGB")
        if mode in ("P", "PA"):
            notes.append("palette indices taken as grey levels")
        if mode in ("I;16", "I", "F"):
            notes.append("values kept: 0..255 only")
    else:
        notes.append(
            "grey repeated to RGB"
            if channels == 3 and greyish
            else "to grey (ITU-R 601 luma)"
            if channels == 1
            else "to RGB"
        )
        extra = {
            "P": "palette expanded",
            "PA": "palette expanded",
            "I;16": "16-bit scaled to 8-bit",
            "I": "32-bit scaled to 8-bit",
            "F": "float scaled to 8-bit",
            "1": "bilevel to 8-bit",
            "CMYK": "CMYK to RGB",
        }.get(mode)
        if extra:
            notes.append(extra)
    if mode in ("RGBA", "LA", "PA"):
        notes.append("alpha dropped")
    return f"{mode}→{wanted} ({', '.join(notes)})" if notes else f"{mode}→{wanted}"


def _file_facts(path: Path) -> tuple[int, int, str]:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.width, img.height, img.mode
    except Exception as exc:  # noqa: BLE001 - whatever PIL cannot open is not an image we can read
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


def read_input(path: Path, facts: InputFacts) -> Input:
    """The model's input for one file, or a DataError (one line) saying why the file cannot be one."""
    width, height, mode = _file_facts(path)
    if facts.task == "segmentation":
        image = _segmentation_image(path, facts)
    else:
        image = _classification_image(path, facts)
    return Input(image, width, height, mode, describe_conversion(mode, facts.channels, facts.reader))


def _classification_image(path: Path, facts: InputFacts) -> np.ndarray:
    from visionlab.data.classification.contrast import normalise_contrast
    from visionlab.data.classification.datamodule import center_crop, resize_square, to_channels

    if facts.reader == "fit":
        from visionlab.data.classification.folders import decode

        image = decode(path, int(facts.image_size), facts.channels)
    else:
        from PIL import Image

        try:
            with Image.open(path) as img:  # GTSRB's own reader (sources._decode), any mode
                image = np.asarray(
                    img.convert("RGB").resize((GTSRB_SIDE, GTSRB_SIDE), Image.BILINEAR), np.uint8
                )
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
        image = resize_square(image[None], facts.image_size)[0] if facts.image_size else image
        image = to_channels(image[None], facts.channels)[0]
    image = normalise_contrast(image[None], facts.contrast_norm)
    if facts.crop is not None and facts.crop > min(image.shape[1:3]):
        raise DataError(
            f"{path}: {image.shape[2]}×{image.shape[1]} after reading, smaller than the model's "
            f"{facts.crop}×{facts.crop} crop"
        )
    return center_crop(image, facts.crop)[0] if facts.crop else image[0]


def _segmentation_image(path: Path, facts: InputFacts) -> np.ndarray:
    from visionlab.data.segmentation import sources

    try:
        raw = sources._read(path)
        image = sources.to_uint8_images(
            sources._grey_or_rgb(raw, facts.channels, path)[None], str(path), facts.channels
        )
    except DataError as exc:
        raise DataError(str(exc).splitlines()[0]) from None
    except Exception as exc:  # noqa: BLE001 - e.g. an image PIL opens but numpy cannot convert
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    if facts.image_size:
        size = int(facts.image_size)
        image = sources.resize_pair(image, np.zeros((1, *image.shape[1:3]), np.uint8), size)[0]
    return image[0]
