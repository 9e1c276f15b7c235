"""``data.download=true`` for ISBI 2012: fetch the public training stack once, verify it, convert it to the
``.npz`` the segmentation datamodule reads, and never fetch it again while that file exists.

Source (the default): the ISBI 2012 training volume as the torch-em dataset loader downloads it,
    https://oc.embl.de/index.php/s/h0TkwqxU0PJDdMd/download   (EMBL ownCloud share kept by the torch-em
    authors)
an HDF5 file whose ``raw`` holds the 30 EM slices (512×512) and ``labels/membranes`` the challenge's original
membrane labels. Its sha256 (``SHA256`` below) is the one torch-em publishes for this URL, in
constantinpape/torch-em, ``torch_em/data/datasets/electron_microscopy/isbi2012.py`` (``CHECKSUM``); it was
copied
from there, not computed here. Reading HDF5 needs ``h5py``.
A mirror can be used instead: ``VISIONLAB_ISBI_URL`` (http(s):// or file://) and, for a different file,
``VISIONLAB_ISBI_SHA256``. Besides the HDF5 file, a ``.zip`` holding the challenge's own ``train-volume.tif``
and
``train-labels.tif`` is understood (read with Pillow, no extra dependency).

Licence: the ISBI 2012 challenge data (serial-section TEM of the Drosophila first-instar larva ventral nerve
cord, Cardona et al., PLoS Biol 2010) comes with no licence file; the organisers ask publications that use it
to cite Cardona et al. 2010 and Arganda-Carreras et al., Front. Neuroanat. 2015
(doi:10.3389/fnana.2015.00142). The data is fetched from its public source on the user's request and is never
redistributed with visionlab.

Conversion (the layout of the development copy, ``isbi2012_membrane_256.npz``): ``x_train`` uint8
(30,1,256,256), images downsampled 512→256 bilinear; ``y_train`` uint8 (30,1,256,256) in {0,1}, 1 = cell
interior, the mask downsampled bilinear and thresholded at one half (a pixel is interior when at least half of
it was)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionlab.config.errors import DataError

log = logging.getLogger(__name__)

URL = "https://oc.embl.de/index.php/s/h0TkwqxU0PJDdMd/download"
SHA256 = "0e10fe909a1243084d91773470856993b7d40126a12e85f0f1345a7a9e512f29"  # torch-em's published CHECKSUM
RAW_NAME = "isbi2012_train.download"  # the fetched file, removed once converted
CACHE_NAME = "isbi2012_membrane_256.npz"
SIZE = 256
TIMEOUT_S = 30.0  # per connection attempt and per read: an unreachable host fails within this, never hangs
HDF5_MAGIC, ZIP_MAGIC = b"\x89HDF\r\n\x1a\n", b"PK\x03\x04"


@dataclass(frozen=True)
class Source:
    url: str
    sha256: str


def configured_source() -> Source:
    """The default source, or a mirror named by ``VISIONLAB_ISBI_URL`` / ``VISIONLAB_ISBI_SHA256``."""
    return Source(
        os.environ.get("VISIONLAB_ISBI_URL") or URL,
        (os.environ.get("VISIONLAB_ISBI_SHA256") or SHA256).strip().lower(),
    )


def has_data(data_dir: Path) -> bool:
    """Whether ``data_dir`` already holds something the loader reads (then nothing is downloaded)."""
    if data_dir.is_file():
        return True
    if not data_dir.is_dir():
        return False
    return (
        any(data_dir.glob("*.npz"))
        or (data_dir / "images").is_dir()
        or (data_dir / "train" / "images").is_dir()
    )


def ensure_isbi2012(data_dir: Path | str, source: Source | None = None, timeout: float = TIMEOUT_S) -> Path:
    """Make sure ``data_dir`` holds ISBI 2012 data; downloads and converts only when it holds none.

    ``data_dir`` is a folder (the cache is ``data_dir/isbi2012_membrane_256.npz``) or an ``.npz`` path.
    Returns the path the datamodule should read. A file saved by hand as ``<folder>/isbi2012_train.download``
    is verified and converted without any network access."""
    data_dir = Path(data_dir).expanduser()
    if has_data(data_dir):
        log.info("%s already holds data: nothing to download.", data_dir)
        return data_dir
    source = source or configured_source()
    target = data_dir if data_dir.suffix == ".npz" else data_dir / CACHE_NAME
    folder = target.parent
    raw = folder / RAW_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"data.data_dir={data_dir}: cannot create {folder} for the download ({exc})."
        ) from exc
    if raw.exists():
        log.info("Using %s (saved earlier) instead of downloading.", raw)
        mismatch(source, sha256_of(raw), hint=f"{raw} was saved by hand: replace or delete it and rerun.")
    else:
        fetch(source, raw, timeout, target)
    write_npz_atomic(target, convert(raw))
    raw.unlink()
    log.info("ISBI 2012 training stack cached at %s; later runs read it without downloading.", target)
    return target


# --------------------------------------------------------------------------------------------- download
def fetch(source: Source, dest: Path, timeout: float, target: Path) -> None:
    """Stream ``source.url`` into ``dest`` with a progress bar, hashing as it goes. Nothing is left behind on
    failure: the bytes go to a temporary file next to ``dest`` that is renamed only after the checksum
    matched."""
    from tqdm import tqdm

    log.info("Downloading the ISBI 2012 training stack from %s", source.url)
    fd, tmp_name = tempfile.mkstemp(prefix=".isbi2012-", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(source.url, timeout=timeout)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise unreachable(source, exc, dest, target) from exc
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc="ISBI 2012", disable=None) as bar:
                    while True:
                        try:
                            chunk = response.read(1 << 20)
                        except OSError as exc:
                            raise unreachable(source, exc, dest, target) from exc
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        mismatch(source, digest.hexdigest())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mismatch(source: Source, actual: str, hint: str = "The download was deleted; nothing was kept.") -> None:
    if actual != source.sha256:
        raise DataError(
            f"ISBI 2012 data from {source.url} failed its checksum: expected sha256 {source.sha256}, got "
            f"{actual}. {hint} If the file at that URL changed on purpose, set VISIONLAB_ISBI_SHA256 "
            "to its new sha256; otherwise try again later or use a mirror (VISIONLAB_ISBI_URL)."
        )


def unreachable(source: Source, exc: BaseException, dest: Path, target: Path) -> DataError:
    """The offline message: what failed, then the three ways out, including doing the download by hand."""
    reason = getattr(exc, "reason", None) or exc
    return DataError(
        f"data.download=true could not fetch the ISBI 2012 training stack from {source.url} ({reason}). "
        "Three ways out: (1) data.download=true again once online, or download that URL on another machine "
        f"(sha256 {source.sha256}), save it as {dest} and rerun with data.download=true: it is verified and "
        f"converted to {target} without network; (2) point data.data_dir=/path/to/your/data at an .npz "
        "(x_train/y_train[, x_val/y_val, x_test/y_test]) or a folder with images/ + masks/ (README, 'Data "
        "formats'); (3) data=synthetic_seg trains on generated images, no files or network needed."
    )


# --------------------------------------------------------------------------------------------- conversion
def convert(raw: Path) -> dict[str, np.ndarray]:
    """The fetched file (HDF5 or a zip of the challenge TIFFs) → the cached arrays."""
    with open(raw, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        images, labels = read_hdf5(raw)
    elif head[:4] == ZIP_MAGIC:
        images, labels = read_tiff_zip(raw)
    else:
        raise DataError(
            f"{raw}: neither an HDF5 file nor a .zip (starts with {head!r}); check VISIONLAB_ISBI_URL."
        )
    return membrane_arrays(images, labels, str(raw))


def read_hdf5(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError as exc:
        raise DataError(f"{path} is HDF5 and reading it needs h5py: pip install h5py, then rerun.") from exc
    with h5py.File(path, "r") as f:
        missing = [k for k in ("raw", "labels/membranes") if k not in f]
        if missing:
            raise DataError(f"{path}: HDF5 file without {missing}; expected 'raw' and 'labels/membranes'.")
        return np.asarray(f["raw"]), np.asarray(f["labels/membranes"])


def read_tiff_zip(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, ImageSequence

    stacks = []
    with zipfile.ZipFile(path) as archive:
        members = {Path(n).name: n for n in archive.namelist()}
        for name in ("train-volume.tif", "train-labels.tif"):
            if name not in members:
                raise DataError(f"{path}: the zip has no {name} (found {sorted(members)[:6]}).")
            with Image.open(io.BytesIO(archive.read(members[name]))) as tif:
                stacks.append(np.stack([np.array(page) for page in ImageSequence.Iterator(tif)]))
    return stacks[0], stacks[1]


def membrane_arrays(images: np.ndarray, labels: np.ndarray, where: str) -> dict[str, np.ndarray]:
    """(N,H,W) slices + binary labels → uint8 (N,1,256,256) images and masks with 1 = cell interior."""
    import cv2

    if images.ndim != 3 or labels.shape != images.shape or len(images) == 0:
        raise DataError(
            f"{where}: expected image and label stacks of one shape (N,H,W); got {images.shape} "
            f"and {labels.shape}."
        )
    values = np.unique(labels)
    if len(values) > 2:
        raise DataError(f"{where}: labels must be binary, found {len(values)} values ({values[:5]} ...).")
    if images.dtype != np.uint8:
        lo, hi = float(images.min()), float(images.max())
        images = np.rint((images - lo) * (255.0 / max(hi - lo, 1e-12))).astype(np.uint8)
    interior = labels > labels.min() if len(values) == 2 else np.ones(labels.shape, bool)
    if interior.mean() < 0.5:  # membranes are the thin minority (~22 %): whichever label is rarer is membrane
        interior = ~interior
    x = np.stack([cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for im in images])
    y = np.stack(
        [
            cv2.resize(m.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) >= 0.5
            for m in interior
        ]
    )
    return {"x_train": x[:, None].astype(np.uint8), "y_train": y[:, None].astype(np.uint8)}


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write next to ``path`` and rename, so a crash or a concurrent run never sees a half-written cache."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
