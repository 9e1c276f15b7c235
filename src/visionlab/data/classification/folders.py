"""A folder of your own images, torchvision's ImageFolder layout: one sub-folder per class (its name is the
class name; labels follow the sorted names), any image size, RGB or grey. Optionally ``train/``, ``val/``,
``test/`` each holding the class folders (the classes are ``train/``'s).

Images are decoded once (shorter side resized to ``image_size``, centre square cropped, converted to the
requested channels) into uint8 arrays cached as ``.npz`` under ``paths.cache_dir``; the cache is keyed by
every file's path, size and modification time, the size and the channels, so a changed folder is decoded
again. A large image is reduced while it is decoded (JPEG: at a smaller scale; others: by whole-pixel blocks,
in strips for 16-bit grey), so one image costs about its decoded size once, not several float64 copies of it.

Symbolic links: the folder is data the user points at, and nothing outside it is read unless they say so. A
link (class folder, sub-folder or file) that resolves inside ``data_dir`` is followed (each real folder once);
one that leaves it is refused with one line naming the link, unless ``data.follow_symlinks=true``; a link to a
folder that holds it (a cycle) is refused too. A folder or file that cannot be read is one line naming it.

This module imports no torch: the config resolvers (``${vl.class_folders:…}``, ``cli/resolvers.py``) list
the classes at composition."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np

from visionlab.config.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
CACHE_VERSION = 2  # 2: large images reduced while decoded (decode)
LAYOUT = (
    "an image folder holds one sub-folder per class with its images (<data_dir>/<class>/<image>.png; any "
    "size, RGB or grey), or train/ (and optionally val/, test/) each holding those class folders"
)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_root(data_dir: Path) -> Path:
    """The folder whose sub-folders are the classes: ``data_dir/train`` when it exists, else ``data_dir``."""
    return data_dir / "train" if (data_dir / "train").is_dir() else data_dir


def class_folders(data_dir: str | Path) -> list[str]:
    """The class names (sub-folder names, sorted) of an image folder; a DataError saying what is expected."""
    data_dir = Path(str(data_dir)).expanduser()
    if not data_dir.is_dir():
        raise DataError(
            f"data.data_dir={data_dir} {'is not a folder' if data_dir.exists() else 'does not exist'}: "
            f"{LAYOUT}. Point data.data_dir at such a folder."
        )
    root = class_root(data_dir)
    names = [p.name for p in _visible_dirs(root)]
    if len(names) < 2:
        raise DataError(
            f"data.data_dir={data_dir}: found {len(names)} class folder(s) in {root} "
            f"({', '.join(names) or 'none'}), "
            f"need at least 2: {LAYOUT}."
        )
    return names


def _inside(path: Path | str, inside: Path) -> bool:
    target = Path(os.path.realpath(path))
    return target == inside or target.is_relative_to(inside)


def _leaving_link(path: Path, data_dir: Path, inside: Path) -> Path:
    """The first part of ``path`` below ``data_dir`` that resolves outside it: the link to name."""
    parts = path.relative_to(data_dir).parts
    for depth in range(1, len(parts) + 1):
        if not _inside(candidate := Path(data_dir, *parts[:depth]), inside):
            return candidate
    return path


def _where(link: Path, data_dir: Path, inside: Path) -> Path:
    """``link`` named where it lies (not through another link that leads to its folder), under
    ``data_dir``."""
    parent = Path(os.path.realpath(link.parent))
    return data_dir / parent.relative_to(inside) / link.name if _inside(parent, inside) else link


def _refuse_outside(path: Path, data_dir: Path, inside: Path) -> None:
    """A DataError naming the link when ``path`` resolves outside the data folder (real path ``inside``)."""
    if _inside(path, inside):
        return
    link = _where(_leaving_link(path, data_dir, inside), data_dir, inside)
    raise DataError(
        f"{link}: a symbolic link to {os.path.realpath(link)}, outside the data folder {data_dir}; "
        "images are read only from inside data.data_dir. Replace the link by what it points to, or set "
        "data.follow_symlinks=true to follow links that leave the folder."
    )


def _refuse_cycle(link: Path, parent: str, data_dir: Path, inside: Path) -> None:
    """A DataError for a link to a folder that holds it (its images would be listed again, under another
    class)."""
    target = os.path.realpath(link)
    if parent == target or Path(parent).is_relative_to(target):
        raise DataError(
            f"{_where(link, data_dir, inside)}: a symbolic link to {target}, a folder that holds the link "
            "itself (a cycle); remove the link."
        )


def _unreadable(path: Path, exc: OSError, what: str) -> DataError:
    return DataError(
        f"{path}: cannot read this {what} ({exc.strerror or type(exc).__name__}). Make it readable, "
        "or remove it from the data folder."
    )


def _images(folder: Path, data_dir: Path, follow_symlinks: bool = False) -> list[Path]:
    """The image files under ``folder`` (any depth; hidden names skipped), as paths under ``folder`` (a link
    keeps its own name). Links are followed, each real folder once; unless ``follow_symlinks``, a link that
    leaves ``data_dir`` is a DataError naming it, before anything behind it is read; so is a link cycle."""
    inside = Path(os.path.realpath(data_dir))
    found, seen, pending = [], set(), [folder]
    while pending:
        current = pending.pop()
        if not follow_symlinks:
            _refuse_outside(current, data_dir, inside)
        real = os.path.realpath(current)
        if real in seen:  # a link back to a folder already walked (a cycle, or two links to one folder)
            continue
        seen.add(real)
        try:
            with os.scandir(current) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            raise _unreadable(current, exc, "folder") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = current / entry.name
            try:
                if entry.is_symlink():
                    if not follow_symlinks:
                        _refuse_outside(path, data_dir, inside)
                    if entry.is_dir():
                        _refuse_cycle(path, real, data_dir, inside)
                if entry.is_dir():
                    pending.append(path)
                elif entry.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(path)
            except OSError as exc:
                raise _unreadable(path, exc, "file") from None
    return sorted(found)


def listing(
    data_dir: Path, classes: list[str], follow_symlinks: bool = False
) -> dict[str, list[tuple[Path, int]]]:
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
            raise DataError(
                f"{folder}: class folder(s) {', '.join(unknown)} are not among the training classes "
                f"({', '.join(classes)}); every split uses the classes of {root}."
            )
        files = []
        for label, name in enumerate(classes):
            images = _images(folder / name, data_dir, follow_symlinks) if (folder / name).is_dir() else []
            if split == "train" and not images:
                raise DataError(
                    f"{folder / name}: no images ({', '.join(IMAGE_SUFFIXES)}); every class folder "
                    "needs at least one. Remove the folder or add images."
                )
            files += [(path, label) for path in images]
        if not files:
            raise DataError(f"{folder}: no images in any class folder.")
        found[split] = files
    return found


HIGH_DEPTH_GREY = ("I", "F")  # and I;16 in its byte orders: scaled to 0..255 by the image's maximum
STRIP_PIXELS = 1 << 21  # input pixels per strip when a high-depth grey image is reduced (16 MB as float64)


def reduction_factor(width: int, height: int, size: int) -> int:
    """The whole-pixel block an image may be reduced by before it is resized to ``size``: its shorter side
    stays at least twice ``size``, so the final antialiased resize still averages over several source
    pixels."""
    return max(1, min(width, height) // (2 * size))


def _high_depth_grey_to_8bit(img, size: int):
    """A 16-bit, 32-bit or float grey image as 8-bit grey (value / the image's maximum × 255, clipped),
    reduced by ``reduction_factor`` on the way: averaged block by block in strips of ``STRIP_PIXELS``, so
    memory beyond the decoded image is a few MB, not several float64 copies of it (13000×13000 × 16 bit: 4.2
    GB before)."""
    from PIL import Image

    width, height = img.size
    band = max(1, STRIP_PIXELS // width)  # rows per strip when the maximum is found (getextrema lacks I;16B)
    top = max(
        float(np.asarray(img.crop((0, y, width, min(height, y + band)))).max())
        for y in range(0, height, band)
    )
    top = top or 1.0
    factor = reduction_factor(width, height, size)
    out_w, out_h = width // factor, height // factor
    rows = max(1, STRIP_PIXELS // (width * factor))  # output rows per strip
    reduced = np.empty((out_h, out_w), np.float64)
    for first in range(0, out_h, rows):
        last = min(out_h, first + rows)
        strip = np.asarray(img.crop((0, first * factor, out_w * factor, last * factor)), np.float64)
        reduced[first:last] = strip.reshape(last - first, factor, out_w, factor).mean(axis=(1, 3))
    return Image.fromarray(np.clip(reduced / top * 255.0, 0, 255).astype(np.uint8))


def decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as uint8 size×size×channels: shorter side resized to ``size`` (bilinear, antialiased), centre
    square cropped; grey repeated to RGB or RGB converted to grey (ITU-R 601 luma), alpha dropped. An image
    whose shorter side is 4× ``size`` or more is reduced first (``reduction_factor``; JPEG decodes at a
    smaller scale)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img.draft(
                None, (2 * size, 2 * size)
            )  # JPEG: decode at 1/2, 1/4 or 1/8 scale where that is enough
            img.load()
            if img.mode.startswith("I;16") or img.mode in HIGH_DEPTH_GREY:
                img = _high_depth_grey_to_8bit(img, size)
            elif (factor := reduction_factor(*img.size, size)) > 1:
                try:
                    img = img.reduce(factor)
                except ValueError:  # a mode reduce() does not take (e.g. palette): convert, then reduce
                    img = img.convert("RGB" if channels == 3 else "L").reduce(factor)
            img = img.convert("RGB" if channels == 3 else "L")
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.BILINEAR)
            return np.asarray(img, np.uint8).reshape(size, size, channels)
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable image ({type(exc).__name__}: {exc}). Remove or replace it."
        ) from exc


def _digest(
    data_dir: Path, files: dict[str, list[tuple[Path, int]]], classes: list[str], size: int, channels: int
) -> str:
    h = hashlib.sha1(f"{CACHE_VERSION}|{data_dir.resolve()}|{size}|{channels}|{classes}".encode())
    for split, items in files.items():
        for path, label in items:
            try:
                stat = path.stat()
            except OSError as exc:
                raise _unreadable(path, exc, "file") from None
            h.update(
                f"{split}|{path.relative_to(data_dir)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
    return h.hexdigest()[:16]


def load_image_folder(
    data_dir: str | Path,
    cache_dir: str | Path,
    image_size: int,
    channels: int,
    classes: list[str] | None = None,
    follow_symlinks: bool = False,
) -> dict[str, np.ndarray]:
    """``x_<split>`` uint8 (N, size, size, C), ``y_<split>`` int64 and ``files_<split>`` (paths relative to
    ``data_dir``) for the splits present; decoded once, then read from the cache. Symbolic links that leave
    ``data_dir`` are refused unless ``follow_symlinks`` (module docstring)."""
    data_dir = Path(str(data_dir)).expanduser()
    classes = classes or class_folders(data_dir)
    files = listing(data_dir, classes, follow_symlinks)
    cached = (
        Path(str(cache_dir)).expanduser()
        / f"image_folder_{_digest(data_dir, files, classes, image_size, channels)}.npz"
    )
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as npz:
                log.info("Loading the decoded image folder %s from the cache %s", data_dir, cached)
                return {key: npz[key] for key in npz.files}
        except Exception:  # noqa: BLE001 - a damaged cache is decoded again
            log.warning("Cache %s is unreadable; decoding %s again.", cached, data_dir)
    total = sum(len(items) for items in files.values())
    log.info(
        "Decoding %d images under %s once (to %d×%d, %d channel(s)); cache %s",
        total,
        data_dir,
        image_size,
        image_size,
        channels,
        cached,
    )
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
        log.warning(
            "Could not write the cache %s (%s); the folder will be decoded again next time.", cached, exc
        )
    return arrays


def groups_from_names(files: np.ndarray, pattern: str) -> np.ndarray:
    """Group ids from file names: the first group of ``pattern`` matched against each file's stem (files whose
    names share it, e.g. frames ``track7_001.png``, ``track7_002.png``, stay on one side of the split); a name
    the pattern does not match is a group of its own."""
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
