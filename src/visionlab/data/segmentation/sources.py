"""Loading and validating segmentation data (binary, index or palette masks: ``masks.py``): a course-layout
``.npz``, an ``images/`` + ``masks/`` folder pair, or a folder holding one such ``.npz`` (e.g.
``shared/data/isbi2012``).

Whatever the source, the result is ``{"x_<split>": uint8 (N, H, W, C), "y_<split>": uint8 (N, H, W)}`` (binary
masks in {0, 1}; otherwise class indices and ``ignore_index``) and ``names_<split>``: where each case came
from (the file relative to the data folder, or ``x_test[3]`` for an npz), so a case can be found by its name.
Every problem is a ``DataError`` naming the file, key or value and what to do."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from visionlab.config.checks import choose
from visionlab.config.errors import DataError
from visionlab.data.segmentation.masks import MaskSpec, check_numeric, mask_from_file, to_index_masks
from visionlab.data.splits import contiguous_split, random_split

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
FORMATS = ("auto", "npz", "folder")
MAX_PIXELS = 64_000_000  # a larger image file is refused before it is decoded (image_folder's bound)
BINARY = MaskSpec()


# --------------------------------------------------------------------------------------------- arrays
def to_uint8_images(array: np.ndarray, where: str, channels: int) -> np.ndarray:
    """(N,H,W) / (N,H,W,C) / (N,C,H,W), float in [0,1] or integers in [0,255] → uint8 (N,H,W,C)."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise DataError(f"{where}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {array.shape}.")
    if array.shape[-1] not in (1, 3) and array.shape[1] in (1, 3):
        array = array.transpose(0, 2, 3, 1)  # channels-first → channels-last
    if array.shape[-1] not in (1, 3):
        raise DataError(
            f"{where}: images have {array.shape[-1]} channels (shape {array.shape}); data.channels takes 1 "
            "(grey) or 3 (RGB): convert them first (e.g. keep the first channel, or drop an alpha channel)."
        )
    if array.shape[-1] != channels:
        raise DataError(
            f"{where}: images have {array.shape[-1]} channels (shape {array.shape}) but "
            f"data.channels={channels}: "
            f"set data.channels={array.shape[-1]} if that is intended."
        )
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{where}: images must be float in [0,1] or uint8, got dtype {array.dtype}.")
    if array.size == 0:
        return np.ascontiguousarray(array, dtype=np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            bad = np.argwhere(~np.isfinite(array))[0]
            raise DataError(f"{where}: image {bad[0]} contains NaN/inf; clean the data before training.")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{where}: float images must lie in [0,1], found values in [{lo:g}, {hi:g}]; "
                "divide by 255 (or store them as uint8)."
            )
        return np.ascontiguousarray(np.rint(array * 255.0), dtype=np.uint8)
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi > 255:
        raise DataError(f"{where}: integer images must lie in [0,255], found [{lo}, {hi}]; rescale to uint8.")
    return np.ascontiguousarray(array, dtype=np.uint8)


def to_binary_masks(array: np.ndarray, where: str, single: bool = False) -> np.ndarray:
    """(N,H,W) / (N,1,H,W) / (N,H,W,1) with values in {0,1} or {0,255} → uint8 (N,H,W) in {0,1}. ``single``:
    the array is one file's mask, named by the file alone (not "case 0")."""
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise DataError(
            f"{where}: masks must be (N,H,W), (N,1,H,W) or (N,H,W,1) with one binary channel, got shape "
            f"{array.shape}."
        )
    array = check_numeric(array, where, single)
    if array.size == 0:
        return np.zeros(array.shape, np.uint8)
    values = np.unique(array)
    if np.isin(values, (0, 1)).all():
        return np.ascontiguousarray(array, dtype=np.uint8)
    if np.isin(values, (0, 255)).all():
        return np.ascontiguousarray(array == 255, dtype=np.uint8)
    bad = values[~np.isin(values, (0, 1, 255))]
    bad = bad[0] if len(bad) else 1  # a mix of 1 and 255
    case = "" if single else f"e.g. in case {int(np.argwhere(array == bad)[0][0])}; "
    shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if len(values) > 8 else "")
    raise DataError(
        f"{where}: masks must hold only {{0,1}} or only {{0,255}}; found value {bad:g} ({case}"
        f"values present: {shown}). Binarise them first, e.g. y = (y > 127), or set data.num_classes (and "
        "data.ignore_index) for masks of more classes."
    )


def to_masks(array: np.ndarray, where: str, spec: MaskSpec, single: bool = False) -> np.ndarray:
    """Binary masks as the seed read them, else class indices (``masks.to_index_masks``)."""
    if spec.binary:
        return to_binary_masks(array, where, single)
    return to_index_masks(array, where, spec, single)


def check_pair(images: np.ndarray, masks: np.ndarray, where: str) -> None:
    if len(images) != len(masks):
        raise DataError(
            f"{where}: {len(images)} images but {len(masks)} masks; every image needs exactly one mask."
        )
    if images.shape[1:3] != masks.shape[1:3]:
        raise DataError(
            f"{where}: images are {images.shape[1]}×{images.shape[2]} but masks are "
            f"{masks.shape[1]}×{masks.shape[2]}; image and mask sizes must match."
        )


def size_hw(image_size) -> tuple[int, int]:
    """``data.image_size``: one side (square) or [height, width]."""
    if isinstance(image_size, int):
        return image_size, image_size
    return int(image_size[0]), int(image_size[1])


def resize_pair(images: np.ndarray, masks: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """Images bilinear (area when shrinking), masks nearest so they keep exactly their values (binary or class
    indices); ``size`` one side or (height, width)."""
    height, width = size_hw(size)
    if images.shape[1:3] == (height, width):
        return images, masks
    shrink = images.shape[1] > height or images.shape[2] > width
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    out_x = np.empty((len(images), height, width, images.shape[3]), np.uint8)
    out_y = np.empty((len(masks), height, width), np.uint8)
    for i in range(len(images)):
        out_x[i] = cv2.resize(images[i], (width, height), interpolation=interp).reshape(height, width, -1)
        out_y[i] = cv2.resize(masks[i], (width, height), interpolation=cv2.INTER_NEAREST)
    return out_x, out_y


# --------------------------------------------------------------------------------------------- npz
def load_npz(path: Path, channels: int = 1, spec: MaskSpec = BINARY) -> dict[str, np.ndarray]:
    """The course layout: x_train/y_train[, x_val/y_val][, x_test/y_test]; other keys are ignored."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read as a .npz file ({type(exc).__name__}: {exc}); re-create it or point "
            "data.data_dir at another file."
        ) from exc
    if "x_train" not in raw or "y_train" not in raw:
        raise DataError(
            f"{path}: needs the keys x_train and y_train (found {sorted(raw)}); optional: x_val/y_val, "
            "x_test/y_test."
        )
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        xk, yk = f"x_{split}", f"y_{split}"
        if xk in raw and yk not in raw:
            log.warning(
                "%s: %s has no %s (unlabelled); it is ignored and a %s split is made instead.",
                path,
                xk,
                yk,
                split,
            )
            continue
        if yk in raw and xk not in raw:
            raise DataError(f"{path}: has {yk} but no {xk}; images and masks come in pairs.")
        if xk not in raw:
            continue
        x = to_uint8_images(raw[xk], f"{path} [{xk}]", channels)
        y = to_masks(raw[yk], f"{path} [{yk}]", spec)
        check_pair(x, y, f"{path} [{xk}/{yk}]")
        if len(x) == 0:
            raise DataError(f"{path} [{xk}]: the {split} split is empty; remove the keys or add images.")
        arrays[xk], arrays[yk] = x, y
        arrays[f"names_{split}"] = np.array([f"{xk}[{i}]" for i in range(len(x))])
    ignored = sorted(set(raw) - {f"{p}_{s}" for p in "xy" for s in SPLITS})
    if ignored:
        log.info("%s: ignoring keys %s", path, ignored)
    return arrays


# --------------------------------------------------------------------------------------------- folders
def _listing(folder: Path) -> dict[str, Path]:
    files = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
            if f.stem in files:
                raise DataError(
                    f"{folder}: two files share the name {f.stem!r} ({files[f.stem].name}, {f.name})."
                )
            files[f.stem] = f
    return files


def _read(path: Path) -> np.ndarray:
    """The file's pixels as stored (a palette PNG gives its indices); one line for a file that is not an image
    or too large to decode (checked from the header, before decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise DataError(
                    f"{path}: {width}×{height} pixels is more than this loader decodes "
                    f"({MAX_PIXELS:,}); shrink the file first (e.g. to the size you train at)."
                )
            return np.array(img)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read the image ({type(exc).__name__}: {exc}); remove or replace it."
        ) from exc


def _load_pair_folder(
    folder: Path, channels: int, image_size, spec: MaskSpec = BINARY, root: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images_dir, masks_dir = folder / "images", folder / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise DataError(f"{d} does not exist: a folder dataset needs images/ and masks/ side by side.")
    images, masks = _listing(images_dir), _listing(masks_dir)
    if not images:
        raise DataError(f"{images_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}) found.")
    missing, extra = sorted(set(images) - set(masks)), sorted(set(masks) - set(images))
    if missing or extra:
        raise DataError(
            f"{folder}: {len(images)} images but {len(masks)} masks, and names must match (ignoring the "
            "extension). "
            + (
                f"No mask for: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. "
                if missing
                else ""
            )
            + (
                f"No image for mask: {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}."
                if extra
                else ""
            )
        )
    xs, ys, names = [], [], []
    for stem, image_path in images.items():
        mask_path = masks[stem]
        mask = to_masks(
            mask_from_file(_read(mask_path), str(mask_path), spec)[None], str(mask_path), spec, single=True
        )
        image = to_uint8_images(
            _grey_or_rgb(_read(image_path), channels, image_path)[None], str(image_path), channels
        )
        (ih, iw), (mh, mw) = image.shape[1:3], mask.shape[1:3]
        if (ih, iw) != (mh, mw) and (
            not image_size or abs(ih * mw - iw * mh) > max(ih, iw, mh, mw)
        ):  # rounding
            raise DataError(
                f"{mask_path}: the mask is {mh}×{mw} but its image {image_path.name} is {ih}×{iw}; a mask "
                "must have its image's size"
                + (
                    " (or, with data.image_size set, its aspect ratio)."
                    if image_size
                    else ", or set data.image_size to resize masks of the same aspect ratio."
                )
            )
        if (
            image_size
        ):  # image and mask each resized to the preset's size (they may differ, e.g. half-size masks)
            image = resize_pair(image, np.zeros((1, *image.shape[1:3]), np.uint8), image_size)[0]
            mask = resize_pair(np.zeros((1, *mask.shape[1:3], 1), np.uint8), mask, image_size)[1]
        check_pair(image, mask, f"{image_path} / {mask_path.name}")
        if not image_size and xs and image.shape != xs[0].shape:
            raise DataError(
                f"{image_path}: {image.shape[1]}×{image.shape[2]} differs from the first image "
                f"({xs[0].shape[1]}×{xs[0].shape[2]}); set data.image_size to resize them all."
            )
        xs.append(image)
        ys.append(mask)
        names.append(str(image_path.relative_to(root)) if root is not None else image_path.name)
    return np.concatenate(xs), np.concatenate(ys), np.array(names)


def _grey_or_rgb(image: np.ndarray, channels: int, path: Path) -> np.ndarray:
    if image.ndim == 3 and image.shape[-1] == 2:  # grey + alpha: grey
        image = image[..., 0]
    if image.ndim == 2:
        return image if channels == 1 else np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3]  # drop alpha
    if channels == 1:
        return (
            cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
            if image.shape[-1] == 3
            else image[..., 0]
        )
    return image


def load_folder(
    path: Path, channels: int = 1, image_size=256, spec: MaskSpec = BINARY
) -> dict[str, np.ndarray]:
    """``path/images`` + ``path/masks`` (all training data), or ``path/{train,val,test}/{images,masks}``."""
    arrays: dict[str, np.ndarray] = {}
    if (path / "images").is_dir():
        arrays["x_train"], arrays["y_train"], arrays["names_train"] = _load_pair_folder(
            path, channels, image_size, spec, path
        )
        return arrays
    for split in SPLITS:
        if (path / split).is_dir():
            arrays[f"x_{split}"], arrays[f"y_{split}"], arrays[f"names_{split}"] = _load_pair_folder(
                path / split, channels, image_size, spec, path
            )
    if "x_train" not in arrays:
        raise DataError(f"{path}: expected images/ + masks/ or train/images + train/masks inside it.")
    return arrays


# --------------------------------------------------------------------------------------------- dispatch
def detect_format(path: Path, fmt: str = "auto") -> tuple[str, Path]:
    """Which loader a path needs; a folder holding exactly one .npz (and no images/) means that file."""
    choose(
        "data.format", fmt, FORMATS
    )  # FileSegmentationDataModule checks it when built; a direct call the same way
    if not path.exists():
        raise DataError(
            f"data.data_dir={path} does not exist. Three ways out: (1) data.download=true fetches the public "
            "ISBI 2012 training stack into it once (data=isbi2012, the U-Net presets' data; needs network); "
            "(2) data.data_dir=/path/to/your/data: an .npz with x_train/y_train[, x_val/y_val, "
            "x_test/y_test] (images uint8 or float in [0,1], masks in {0,1} or {0,255}) or a folder with "
            "images/ + masks/ of the same file names (README, 'Data formats'); (3) data=synthetic_seg trains "
            "on generated images, no files or network needed."
        )
    if path.is_file():
        if fmt == "folder":
            raise DataError(f"data.data_dir={path} is a file but data.format=folder; pass the folder.")
        return "npz", path
    if fmt != "npz" and ((path / "images").is_dir() or (path / "train" / "images").is_dir()):
        return "folder", path
    npzs = sorted(path.glob("*.npz"))
    if fmt != "folder" and len(npzs) == 1:
        return "npz", npzs[0]
    if len(npzs) > 1:
        raise DataError(
            f"data.data_dir={path} holds several .npz files ({', '.join(p.name for p in npzs)}); "
            "point data.data_dir at one of them."
        )
    raise DataError(
        f"data.data_dir={path}: found neither a .npz file nor images/ + masks/ (or train/images + "
        "train/masks)."
    )


def load_segmentation(
    path: Path, fmt: str = "auto", channels: int = 1, image_size=256, spec: MaskSpec = BINARY
) -> tuple[dict[str, np.ndarray], str]:
    """Load, validate and (if ``image_size``: one side or [height, width]) resize; returns (arrays, the source
    actually read)."""
    kind, source = detect_format(Path(path).expanduser(), fmt)
    arrays = (
        load_npz(source, channels, spec) if kind == "npz" else load_folder(source, channels, image_size, spec)
    )
    if image_size:
        for split in SPLITS:
            if f"x_{split}" in arrays and arrays[f"x_{split}"].shape[1:3] != size_hw(image_size):
                log.info(
                    "%s: resizing %s from %s to %d×%d",
                    source,
                    split,
                    "×".join(map(str, arrays[f"x_{split}"].shape[1:3])),
                    *size_hw(image_size),
                )
                arrays[f"x_{split}"], arrays[f"y_{split}"] = resize_pair(
                    arrays[f"x_{split}"], arrays[f"y_{split}"], image_size
                )
    return arrays, f"{kind}:{source}"


SPLIT_MODES = ("random", "contiguous")


def _ranges(idx: np.ndarray) -> str:
    """Consecutive indices as ranges: [0 1 2 5] → "0–2, 5"."""
    runs = np.split(idx, np.flatnonzero(np.diff(idx) != 1) + 1) if len(idx) else []
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs) or "none"


def complete_splits(
    arrays: dict[str, np.ndarray],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str = "data",
    mode: str = "random",
) -> tuple[dict[str, np.ndarray], list[str], str]:
    """Carve missing val/test splits out of train; returns the arrays, notes saying what was done, and the
    split made in a few words for the data description ("" when none was made).

    ``random``: a seeded permutation. ``contiguous``: the training cases are an ordered stack (ISBI's 30
    slices); val and test are blocks of consecutive cases at its end, each after one unused gap case, so no
    held-out case has a neighbour in training (``splits.contiguous_split``); the note names the cases of every
    split."""
    choose(
        "data.split_mode", mode, SPLIT_MODES
    )  # the datamodule checked it; a direct call is checked the same way
    notes: list[str] = []
    carve = [
        s for s, f in (("val", val_fraction), ("test", test_fraction)) if f"x_{s}" not in arrays and f > 0
    ]
    if "x_val" not in arrays and "val" not in carve:
        raise DataError(
            f"{source}: has no validation split and data.val_fraction=0; set data.val_fraction>0."
        )
    if not carve:
        return arrays, notes, ""
    fractions = {"val": val_fraction, "test": test_fraction}
    keep = 1.0 - sum(fractions[s] for s in carve)
    if keep <= 0:
        raise DataError(
            f"data.val_fraction + data.test_fraction must be < 1, got {val_fraction} + {test_fraction}."
        )
    n = len(arrays["x_train"])
    gaps = np.zeros(0, np.int64)
    if mode == "contiguous":
        sizes = tuple(max(1, round(fractions[s] * n)) for s in carve)
        try:
            train, blocks, gaps = contiguous_split(n, sizes)
        except ValueError as exc:
            raise DataError(
                f"{source}: data.split_mode=contiguous: {exc}; lower data.val_fraction/"
                "data.test_fraction or use data.split_mode=random."
            ) from None
        parts = [train, *blocks]
    else:
        parts = random_split(n, (keep, *(fractions[s] for s in carve)), seed)
    x, y = arrays.pop("x_train"), arrays.pop("y_train")
    names = arrays.pop("names_train", None)
    out = dict(arrays)
    for name, idx in zip(("train", *carve), parts):
        if len(idx) == 0:
            raise DataError(
                f"{source}: the {name} split made from {n} training images is empty "
                f"(val_fraction={val_fraction}, test_fraction={test_fraction}); change the fractions or add "
                "images."
            )
        out[f"x_{name}"], out[f"y_{name}"] = x[idx], y[idx]
        if names is not None:
            out[f"names_{name}"] = names[idx]
    sizes_text = " / ".join(f"{len(i)} {s}" for s, i in zip(("train", *carve), parts))
    how = (
        "contiguous blocks of the stack: "
        + ", ".join(f"{s} {_ranges(i)}" for s, i in zip(("train", *carve), parts))
        + f", unused gap {_ranges(gaps)}; data.split_mode=contiguous"
        if mode == "contiguous"
        else f"data.split_seed={seed}"
    )
    notes.append(
        f"{source}: no labelled {' or '.join(carve)} split in the data, so {n} training images were split "
        f"{sizes_text} ({how})."
    )
    return out, notes, f"{sizes_text}; {how}"
