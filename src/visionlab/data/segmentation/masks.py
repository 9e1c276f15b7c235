"""What a mask's values mean, and the one place masks are checked and converted to class indices.

Three kinds of mask, decided by the data config (``data.num_classes``, ``data.ignore_index``,
``data.palette``):

- **binary** (``num_classes: 2``, no palette): values {0, 1} or {0, 255} → {0, 1}, the seed's sigmoid path;
- **index** (``num_classes`` ≥ 3, or any mask stored as one channel when a palette is given): each pixel holds
  its class 0..K−1, or ``ignore_index`` (e.g. CamVid's void 11) for pixels no loss or score counts;
- **palette/RGB** (a 3-channel mask with colours and ``data.palette`` set): each colour maps to the mask value
  at its position in the table (entry k = the colour of class k; one more entry, when ``ignore_index`` is set,
  is the colour of ignored pixels).

Why one module: every reader (npz, folder) and every refusal speaks the same language, and a bad value is
refused in one line that names the file, the value and what to set, never as an IndexError from deep inside
NumPy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from visionlab.config.errors import ConfigError, DataError


@dataclass(frozen=True)
class MaskSpec:
    num_classes: int = 2
    ignore_index: int | None = None
    palette: tuple[tuple[int, int, int], ...] | None = None  # colour of mask value k at entry k

    @property
    def binary(self) -> bool:
        """The seed's path: two classes, masks {0,1} or {0,255}, one sigmoid output."""
        return self.num_classes == 2 and self.palette is None and self.ignore_index is None

    def allowed(self) -> str:
        top = f"0..{self.num_classes - 1}"
        return top + (f" and {self.ignore_index} (ignored)" if self.ignore_index is not None else "")


def mask_spec(num_classes, ignore_index, palette) -> MaskSpec:
    """The data config's mask keys, checked once (ConfigError, one line)."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 2 <= num_classes <= 255:
        raise ConfigError(
            f"data.num_classes={num_classes!r} is not valid: expected an integer in 2..255 (2: binary "
            "masks; K ≥ 3: index or palette masks of K classes); e.g. data.num_classes=11."
        )
    if ignore_index is not None and (
        not isinstance(ignore_index, int)
        or isinstance(ignore_index, bool)
        or not num_classes <= ignore_index <= 255
    ):
        raise ConfigError(
            f"data.ignore_index={ignore_index!r} is not valid: expected null or a mask value in "
            f"{num_classes}..255 that is no class (data.num_classes={num_classes}); e.g. "
            f"data.ignore_index=255."
        )
    colours = None
    if palette is not None:
        expected = num_classes + (ignore_index is not None)
        if isinstance(palette, (str, bytes)) or not isinstance(palette, Sequence) or len(palette) != expected:
            raise ConfigError(
                f"data.palette must list {expected} colours [r, g, b] (entry k = the colour of class k"
                + (", the last one the colour of ignored pixels" if ignore_index is not None else "")
                + f"), got {palette!r:.120}."
            )
        colours = []
        for k, colour in enumerate(palette):
            if (
                isinstance(colour, (str, bytes))
                or not isinstance(colour, Sequence)
                or len(colour) != 3
                or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour)
            ):
                raise ConfigError(
                    f"data.palette[{k}]={colour!r} is not valid: expected [r, g, b] with integers "
                    "0..255; e.g. [128, 64, 128]."
                )
            colours.append(tuple(int(c) for c in colour))
        if len(set(colours)) != len(colours):
            raise ConfigError("data.palette gives one colour to two classes; every entry must differ.")
        colours = tuple(colours)
    return MaskSpec(num_classes, ignore_index, colours)


def palette_value(spec: MaskSpec, position: int) -> int:
    """The mask value of palette entry ``position`` (the extra last entry is the ignored value)."""
    return position if position < spec.num_classes else int(spec.ignore_index)


def _where(where: str, case: int | None) -> str:
    """``file [key] case 3`` for a stack; a single file (one case) is named by itself, never "case 0"."""
    return where if case is None else f"{where} case {case}"


def _first_case(array: np.ndarray, bad: np.ndarray, single: bool) -> int | None:
    if single:
        return None
    return int(np.argwhere(bad.reshape(len(array), -1).any(1))[0][0])


def check_numeric(array: np.ndarray, where: str, single: bool) -> np.ndarray:
    """A numeric array whose floats are finite whole numbers, else one line (string, object, NaN, 0.5 …)."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.floating):
        raise DataError(
            f"{where}: masks must hold numbers (class indices), got dtype {array.dtype}; store them as uint8."
        )
    if np.issubdtype(array.dtype, np.floating) and array.size:
        finite = np.isfinite(array)
        if not finite.all():
            case = _first_case(array, ~finite, single)
            raise DataError(
                f"{_where(where, case)}: the mask holds NaN/inf; masks must hold class indices "
                "(store them as uint8)."
            )
        fractional = array != np.round(array)
        if fractional.any():
            case = _first_case(array, fractional, single)
            value = float(array.reshape(-1)[np.flatnonzero(fractional.reshape(-1))[0]])
            raise DataError(
                f"{_where(where, case)}: the mask holds the value {value:g}, which is no class index; "
                "masks must hold whole numbers (binarise or round them first, e.g. y = (y > 0.5))."
            )
    return array


def to_index_masks(array: np.ndarray, where: str, spec: MaskSpec, single: bool = False) -> np.ndarray:
    """(N,H,W) / (N,1,H,W) / (N,H,W,1) of class indices (and ``ignore_index``) → uint8 (N,H,W), or one line
    naming the first value outside the classes, where it is, and what to set."""
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise DataError(
            f"{where}: index masks must be (N,H,W), (N,1,H,W) or (N,H,W,1) with one channel of class "
            f"indices, got shape {array.shape}"
            + ("; RGB masks need data.palette (the colour of each class)." if array.ndim == 4 else ".")
        )
    array = check_numeric(array, where, single)
    if array.size == 0:
        return np.zeros(array.shape, np.uint8)
    valid = (array >= 0) & (array < spec.num_classes)
    if spec.ignore_index is not None:
        valid |= array == spec.ignore_index
    if not valid.all():
        case = _first_case(array, ~valid, single)
        value = array.reshape(-1)[np.flatnonzero(~valid.reshape(-1))[0]]
        value = int(value) if float(value).is_integer() else float(value)
        hint = (
            f"set data.ignore_index={value} if it marks pixels to ignore, or data.num_classes={value + 1}"
            if isinstance(value, int) and spec.num_classes <= value <= 255 and spec.ignore_index is None
            else f"fix the mask or data.num_classes (now {spec.num_classes})"
        )
        raise DataError(
            f"{_where(where, case)}: mask value {value} is outside the classes {spec.allowed()} "
            f"(data.num_classes={spec.num_classes}, data.ignore_index={spec.ignore_index}); {hint}."
        )
    return np.ascontiguousarray(array, dtype=np.uint8)


def colours_to_index(rgb: np.ndarray, where: str, spec: MaskSpec) -> np.ndarray:
    """An (H, W, 3) colour mask → (H, W) uint8 mask values through ``data.palette``; a colour not in the table
    is refused with the colour, one pixel holding it and what to do."""
    codes = (
        (rgb[..., 0].astype(np.int64) << 16)
        | (rgb[..., 1].astype(np.int64) << 8)
        | rgb[..., 2].astype(np.int64)
    )
    table = np.array([(r << 16) | (g << 8) | b for r, g, b in spec.palette], np.int64)
    order = np.argsort(table)
    position = np.searchsorted(table[order], codes)
    position = np.clip(position, 0, len(table) - 1)
    found = table[order][position] == codes
    if not found.all():
        y, x = (int(v) for v in np.argwhere(~found)[0])
        colour = tuple(int(c) for c in rgb[y, x])
        raise DataError(
            f"{where}: colour {list(colour)} at pixel (row {y}, column {x}) is not in data.palette; add "
            "it with its class (entry k = the colour of class k) or fix the mask."
        )
    values = np.array([palette_value(spec, p) for p in range(len(table))], np.uint8)
    return values[order][position]


def mask_from_file(raw: np.ndarray, where: str, spec: MaskSpec) -> np.ndarray:
    """One decoded mask file (H,W), (H,W,2) grey+alpha, (H,W,3) or (H,W,4) → (H,W) values, checked."""
    if raw.ndim == 3 and raw.shape[-1] in (2, 4):  # drop alpha: grey+alpha is grey, RGBA is RGB
        raw = raw[..., :-1]
    if raw.ndim == 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim == 3:
        grey = bool((raw == raw[..., :1]).all())
        if spec.palette is not None:
            return colours_to_index(raw, where, spec)
        if not grey:
            what = "binary masks" if spec.binary else "index masks"
            raise DataError(
                f"{where}: the mask has colours but data.palette is not set; give {what} of one "
                "channel, or set data.palette (the colour of each class) and data.num_classes."
            )
        raw = raw[..., 0]
    if raw.ndim != 2:
        raise DataError(f"{where}: a mask must be a one-channel or RGB image, got shape {raw.shape}.")
    return raw
