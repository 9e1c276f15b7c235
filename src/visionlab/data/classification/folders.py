"""A folder of your own images, torchvision's ImageFolder layout: one sub-folder per class (its name is the class
name; labels follow the sorted names), any image size, RGB or grey. Optionally ``train/``, ``val/``, ``test/``
each holding the class folders (the classes are ``train/``'s).

Images are decoded once (shorter side resized to ``image_size``, centre square cropped, converted to the requested
channels) into uint8 arrays cached as ``.npz`` under ``paths.cache_dir``; the cache is keyed by every file's path,
size and modification time, the size and the channels, so a changed folder is decoded again.

This module imports no torch: the config resolvers (``${vl.class_folders:…}``) list the classes at composition.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np

from visionlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
SPLIT_FOLDERS = ("train", "val", "test")
CACHE_VERSION = 1
LAYOUT = ("an image folder holds one sub-folder per class with its images (<data_dir>/<class>/<image>.png; any "
          "size, RGB or grey), or train/ (and optionally val/, test/) each holding those class folders")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_root(data_dir: Path) -> Path:
    """The folder whose sub-folders are the classes: ``data_dir/train`` when it exists, else ``data_dir``."""
    return data_dir / "train" if (data_dir / "train").is_dir() else data_dir


def class_folders(data_dir: str | Path) -> list[str]:
    """The class names (sub-folder names, sorted) of an image folder; a DataError saying what is expected."""
    data_dir = Path(str(data_dir)).expanduser()
    if not data_dir.is_dir():
        raise DataError(f"data.data_dir={data_dir} {'is not a folder' if data_dir.exists() else 'does not exist'}: "
                        f"{LAYOUT}. Point data.data_dir at such a folder.")
    root = class_root(data_dir)
    names = [p.name for p in _visible_dirs(root)]
    if len(names) < 2:
        raise DataError(f"data.data_dir={data_dir}: found {len(names)} class folder(s) in {root} ({', '.join(names) or 'none'}), "
                        f"need at least 2: {LAYOUT}.")
    return names


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def listing(data_dir: Path, classes: list[str]) -> dict[str, list[tuple[Path, int]]]:
    """{split: [(file, label), …]} for the splits present (``train`` always)."""
    root = class_root(data_dir)
    splits = {"train": root}
    if root != data_dir:
        splits.update({s: data_dir / s for s in ("val", "test") if (data_dir / s).is_dir()})
    found: dict[str, list[tuple[Path, int]]] = {}
    for split, folder in splits.items():
        present = [p.name for p in _visible_dirs(folder)]
        unknown = sorted(set(present) - set(classes))
        if unknown:
            raise DataError(f"{folder}: class folder(s) {', '.join(unknown)} are not among the training classes "
                            f"({', '.join(classes)}); every split uses the classes of {root}.")
        files = []
        for label, name in enumerate(classes):
            images = _images(folder / name) if (folder / name).is_dir() else []
            if split == "train" and not images:
                raise DataError(f"{folder / name}: no images ({', '.join(IMAGE_SUFFIXES)}); every class folder "
                                "needs at least one. Remove the folder or add images.")
            files += [(path, label) for path in images]
        if not files:
            raise DataError(f"{folder}: no images in any class folder.")
        found[split] = files
    return found


def decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as uint8 size×size×channels: shorter side resized to ``size`` (bilinear, antialiased), centre
    square cropped; grey repeated to RGB or RGB converted to grey (ITU-R 601 luma), alpha dropped."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode.startswith("I;16") or img.mode in ("I", "F"):  # 16-bit or float grey: scale to 0..255
                array = np.asarray(img, np.float64)
                top = array.max() or 1.0
                img = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8))
            img = img.convert("RGB" if channels == 3 else "L")
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.BILINEAR)
            return np.asarray(img, np.uint8).reshape(size, size, channels)
    except Exception as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc}). Remove or replace it.") from exc


def _digest(data_dir: Path, files: dict[str, list[tuple[Path, int]]], classes: list[str], size: int,
            channels: int) -> str:
    h = hashlib.sha1(f"{CACHE_VERSION}|{data_dir.resolve()}|{size}|{channels}|{classes}".encode())
    for split, items in files.items():
        for path, label in items:
            stat = path.stat()
            h.update(f"{split}|{path.relative_to(data_dir)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def load_image_folder(data_dir: str | Path, cache_dir: str | Path, image_size: int, channels: int,
                      classes: list[str] | None = None) -> dict[str, np.ndarray]:
    """``x_<split>`` uint8 (N, size, size, C), ``y_<split>`` int64 and ``files_<split>`` (paths relative to
    ``data_dir``) for the splits present; decoded once, then read from the cache."""
    data_dir = Path(str(data_dir)).expanduser()
    classes = classes or class_folders(data_dir)
    files = listing(data_dir, classes)
    cached = Path(str(cache_dir)).expanduser() / f"image_folder_{_digest(data_dir, files, classes, image_size, channels)}.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as npz:
                log.info("Loading the decoded image folder %s from the cache %s", data_dir, cached)
                return {key: npz[key] for key in npz.files}
        except Exception:  # noqa: BLE001 - a damaged cache is decoded again
            log.warning("Cache %s is unreadable; decoding %s again.", cached, data_dir)
    total = sum(len(items) for items in files.values())
    log.info("Decoding %d images under %s once (to %d×%d, %d channel(s)); cache %s", total, data_dir, image_size,
             image_size, channels, cached)
    arrays: dict[str, np.ndarray] = {}
    for split, items in files.items():
        arrays[f"x_{split}"] = np.stack([decode(path, image_size, channels) for path, _ in items])
        arrays[f"y_{split}"] = np.asarray([label for _, label in items], np.int64)
        arrays[f"files_{split}"] = np.asarray([path.relative_to(data_dir).as_posix() for path, _ in items])
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(cached)
    except OSError as exc:  # a read-only cache folder costs a decode next time, nothing else
        log.warning("Could not write the cache %s (%s); the folder will be decoded again next time.", cached, exc)
    return arrays


def groups_from_names(files: np.ndarray, pattern: str) -> np.ndarray:
    """Group ids from file names: the first group of ``pattern`` matched against each file's stem (files whose
    names share it, e.g. frames ``track7_001.png``, ``track7_002.png``, stay on one side of the split); a name the
    pattern does not match is a group of its own."""
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise ConfigError(f"data.group_pattern={pattern!r} is not a regular expression ({exc}).") from None
    if regex.groups < 1:
        raise ConfigError(f"data.group_pattern={pattern!r} needs one capture group, e.g. '^(.+)_[^_]+$'.")
    keys = []
    for name in files:
        path = Path(str(name))
        match = regex.match(path.stem)
        keys.append(f"{path.parent}/{match.group(1)}" if match else str(path))
    return np.unique(np.asarray(keys), return_inverse=True)[1].astype(np.int64)
