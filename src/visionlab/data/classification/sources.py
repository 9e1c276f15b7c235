"""Where GTSRB arrays come from: a prepared uint8 cache, the official folder layout, or a torchvision
download.

Everything ends as one dict of uint8 arrays (``x_train`` N×32×32×3, ``y_train``, ``track_train`` and
optionally ``x_test``/``y_test``) that is validated once, so the datamodule never sees malformed data."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np

from visionlab.config.errors import DataError
from visionlab.data.npz_files import not_an_npz

log = logging.getLogger(__name__)

NUM_CLASSES = 43
IMAGE_SIZE = 32
HOW_TO_GET_DATA = (
    "Get the data in one of three ways: (1) point data.data_dir (or $VISIONLAB_GTSRB_DIR) at a folder of "
    "prepared .npz files with keys x_train (N,32,32,3 uint8), y_train, track_train [, x_test, y_test], e.g. "
    "data.data_dir=/path/to/gtsrb32; (2) point it at the official GTSRB layout "
    "(<dir>/gtsrb/GTSRB/Training/<class>/*.ppm, as torchvision.datasets.GTSRB stores it); (3) add "
    "data.download=true to let torchvision download it (needs network). Or run offline on the embedded "
    "synthetic set with data=synthetic_signs."
)


def _check_split(
    arrays: dict[str, np.ndarray], split: str, origin: str, num_classes: int = NUM_CLASSES
) -> None:
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] != 3:
        raise DataError(
            f"{origin}: x_{split} has shape {x.shape}, expected (N, S, S, 3) RGB square images "
            f"(S = {IMAGE_SIZE} for GTSRB as visionlab prepares it)."
        )
    if x.dtype != np.uint8:
        raise DataError(f"{origin}: x_{split} has dtype {x.dtype}, expected uint8 (0..255).")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{origin}: y_{split} has shape {y.shape}, expected ({len(x)},) to match x_{split}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{origin}: y_{split} has dtype {y.dtype}, expected integer class ids.")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise DataError(
            f"{origin}: y_{split} holds labels outside 0..{num_classes - 1} (e.g. {bad[:5].tolist()}); "
            f"data.num_classes={num_classes} (GTSRB has 43 classes)."
        )


def _test_only(arrays: dict[str, np.ndarray]) -> bool:
    """A file with the official test split alone (x_test/y_test, no training keys), as data READMEs allow."""
    return not any(key in arrays for key in ("x_train", "y_train", "track_train")) and (
        "x_test" in arrays or "y_test" in arrays
    )


def validate(
    arrays: dict[str, np.ndarray],
    origin: str,
    test_only_allowed: bool = False,
    num_classes: int = NUM_CLASSES,
) -> dict[str, np.ndarray]:
    """Check shapes, dtypes and label ranges (0..num_classes-1); return arrays with canonical dtypes."""
    if test_only_allowed and _test_only(arrays):
        if not ("x_test" in arrays and "y_test" in arrays):
            raise DataError(f"{origin}: has only one of x_test/y_test; provide both or neither.")
        _check_split(arrays, "test", origin, num_classes)
        return {"x_test": arrays["x_test"], "y_test": arrays["y_test"].astype(np.int64)}
    for key in ("x_train", "y_train", "track_train"):
        if key not in arrays:
            raise DataError(f"{origin}: missing key '{key}' (found {sorted(arrays)}). {HOW_TO_GET_DATA}")
    _check_split(arrays, "train", origin, num_classes)
    if arrays["track_train"].shape != arrays["y_train"].shape:
        raise DataError(
            f"{origin}: track_train has shape {arrays['track_train'].shape}, expected "
            f"{arrays['y_train'].shape}."
        )
    if not np.issubdtype(
        arrays["track_train"].dtype, np.integer
    ):  # a cast would drop fractions or imaginary parts
        raise DataError(
            f"{origin}: track_train has dtype {arrays['track_train'].dtype}, expected integer track ids "
            "(the images of one physical sign share one)."
        )
    has_test = "x_test" in arrays or "y_test" in arrays
    if has_test:
        if not ("x_test" in arrays and "y_test" in arrays):
            raise DataError(f"{origin}: has only one of x_test/y_test; provide both or neither.")
        _check_split(arrays, "test", origin, num_classes)
    out = {
        "x_train": arrays["x_train"],
        "y_train": arrays["y_train"].astype(np.int64),
        "track_train": arrays["track_train"].astype(np.int64),
    }
    if has_test:
        out.update(x_test=arrays["x_test"], y_test=arrays["y_test"].astype(np.int64))
    return out


def load_npz_files(paths: list[Path], num_classes: int = NUM_CLASSES) -> dict[str, np.ndarray]:
    """Load and concatenate prepared ``.npz`` files in the given order; each is validated on its own first. A
    file may hold only the test split (x_test/y_test); at least one must hold training data."""
    parts: list[dict[str, np.ndarray]] = []
    for path in paths:
        if (why := not_an_npz(path)) is not None:
            raise DataError(f"{path}: {why}. Re-create it with numpy.savez, or remove it.")
        try:
            with np.load(path, allow_pickle=False) as npz:
                raw = {key: npz[key] for key in npz.files}
        except Exception as exc:  # zipfile/pickle/io errors
            raise DataError(
                f"{path}: cannot be read as a .npz archive ({exc}). Re-create or remove it."
            ) from exc
        parts.append(validate(raw, str(path), test_only_allowed=True, num_classes=num_classes))
    training = [p for p in parts if "x_train" in p]
    if not training:
        raise DataError(
            f"{paths[0].parent}: the .npz files ({', '.join(p.name for p in paths)}) hold only a test "
            f"split; add the training files (x_train, y_train, track_train). {HOW_TO_GET_DATA}"
        )
    sizes = {p[key].shape[1] for p in parts for key in ("x_train", "x_test") if key in p}
    if len(sizes) > 1:
        raise DataError(
            f"{paths[0].parent}: the .npz files hold images of different sizes {sorted(sizes)}; "
            "prepare them at one size."
        )
    merged = {
        key: np.concatenate([p[key] for p in training]) for key in ("x_train", "y_train", "track_train")
    }
    tests = [p for p in parts if "x_test" in p]
    if tests:
        merged["x_test"] = np.concatenate([p["x_test"] for p in tests])
        merged["y_test"] = np.concatenate([p["y_test"] for p in tests])
    return merged


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            return np.asarray(img, np.uint8)
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable image ({type(exc).__name__}: {exc}). Remove or replace it."
        ) from exc


def find_official_root(data_dir: Path) -> Path | None:
    """The folder torchvision's GTSRB expects as ``root`` (it holds ``gtsrb/GTSRB/Training``), if any."""
    for root in (data_dir, data_dir.parent):
        if (root / "gtsrb" / "GTSRB" / "Training").is_dir():
            return root
    if (data_dir / "GTSRB" / "Training").is_dir():
        raise DataError(
            f"{data_dir}: found GTSRB/Training directly inside; torchvision's layout nests it as "
            f"<root>/gtsrb/GTSRB/Training. Set data.data_dir to the folder that contains 'gtsrb/'."
        )
    return None


_TRACK = re.compile(r"^(\d+)_\d+\.ppm$", re.IGNORECASE)


def read_official_layout(root: Path, num_classes: int = NUM_CLASSES) -> dict[str, np.ndarray]:
    """Decode the official layout once via torchvision's GTSRB listing; tracks come from
    ``TTTTT_FFFFF.ppm``."""
    from torchvision.datasets import GTSRB

    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        try:
            dataset = GTSRB(str(root), split=split, download=False)
        except (RuntimeError, FileNotFoundError):
            if split == "test":
                log.info(
                    "No official GTSRB test split under %s (Final_Test/Images + GT-final_test.csv).", root
                )
                continue
            raise
        samples = dataset._samples
        if not samples:
            raise DataError(f"{root}/gtsrb/GTSRB: the {split} split lists no .ppm images.")
        arrays[f"x_{split}"] = np.stack([_decode(Path(p)) for p, _ in samples])
        # train labels from the class folder name (torchvision indexes folders, which shifts ids if one is
        # missing)
        labels = [int(Path(p).parent.name) if split == "train" else label for p, label in samples]
        arrays[f"y_{split}"] = np.asarray(labels, np.int64)
        if split == "train":
            tracks = []
            for path, _ in samples:
                match = _TRACK.match(Path(path).name)
                if not match:
                    raise DataError(
                        f"{path}: training file name is not TRACK_FRAME.ppm; cannot recover its track."
                    )
                tracks.append(int(match.group(1)))
            arrays["track_train"] = np.asarray(tracks, np.int64)
    return validate(arrays, str(root), num_classes=num_classes)


def cache_file(cache_dir: Path, source: Path) -> Path:
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
    return cache_dir / f"gtsrb32_{digest}.npz"


def load_gtsrb(
    data_dir: str | Path, cache_dir: str | Path, download: bool = False, num_classes: int = NUM_CLASSES
) -> dict[str, np.ndarray]:
    """Load GTSRB as uint8 arrays, trying prepared ``.npz`` files, then the official layout, then a
    download."""
    data_dir = Path(data_dir).expanduser()
    cache_dir = Path(cache_dir).expanduser()
    npz_files = sorted(data_dir.glob("*.npz")) if data_dir.is_dir() else []
    if npz_files:
        log.info("Loading GTSRB from %d prepared file(s) in %s", len(npz_files), data_dir)
        return load_npz_files(npz_files, num_classes)

    root = find_official_root(data_dir) if data_dir.is_dir() else None
    if root is None and download:
        from torchvision.datasets import GTSRB

        log.info("Downloading GTSRB into %s (data.download=true)", data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for split in ("train", "test"):
                GTSRB(str(data_dir), split=split, download=True)
        except Exception as exc:
            raise DataError(f"Download of GTSRB into {data_dir} failed ({exc}). {HOW_TO_GET_DATA}") from exc
        root = data_dir
    if root is None:
        state = (
            "does not exist" if not data_dir.exists() else "holds no .npz files and no official GTSRB layout"
        )
        raise DataError(f"GTSRB data directory {data_dir} {state}. {HOW_TO_GET_DATA}")

    cached = cache_file(cache_dir, root)
    if cached.exists():
        log.info("Loading GTSRB cache %s", cached)
        return load_npz_files([cached], num_classes)
    log.info("Decoding the official GTSRB layout under %s once; writing cache %s", root, cached)
    arrays = read_official_layout(root, num_classes)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cached)
    return arrays
