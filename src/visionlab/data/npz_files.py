"""What a file that should be an ``.npz`` archive is instead, said without quoting its contents.

``np.load`` answers a text file named ``.npz`` with "This file contains pickled (object) data" (it tries the
pickle format last), and a single ``.npy`` array renamed ``.npz`` with an ndarray that has no ``files``:
neither says the file is simply not an archive. ``not_an_npz`` looks at the first bytes first."""

from __future__ import annotations

from pathlib import Path

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first local header, or an empty zip's end record


def not_an_npz(path: Path) -> str | None:
    """Why ``path`` is not an ``.npz`` archive (numpy.savez writes a zip of .npy files), or None when it
    starts like one (a damaged archive is then np.load's to describe)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if head.startswith(ZIP_MAGICS):
        return None
    if head.startswith(NPY_MAGIC):
        return "it is a single .npy array, not an .npz archive (numpy.savez writes one with named arrays)"
    if not head:
        return "it is empty, not an .npz archive"
    return "it is not an .npz archive (not a zip file as numpy.savez writes)"
