"""The data sets this study constructs from what the repository has, written as course-layout .npz files.

    python experiments/unet_recipe/make_sets.py ../shared/data/isbi2012/isbi2012_membrane_256.npz <out folder>

- ``isbi_shift_dark.npz`` / ``isbi_shift_bright.npz``: ISBI 2012 with the preset's split (train 0–15, val 17–22,
  test 24–29), the test slices only under another exposure (another scanner/stain: gamma, contrast and offset), so
  a model trained and validated on the plain slices meets an intensity shift it never saw. Both lie INSIDE the
  family the preset's intensity augmentation draws from (γ 0.6–1.4, contrast ×(1 ± 0.25), brightness ± 0.25).
- ``isbi_shift_dark_far.npz`` / ``isbi_shift_bright_far.npz``: the same test slices under exposures OUTSIDE that
  family in every parameter (dark: γ 2.2, contrast 0.45, offset 0; bright: γ 0.4, contrast 0.55, offset 0.35).
- ``isbi_shift_noise.npz``: the test slices with additive Gaussian noise, σ 0.16 of the range at the stored 256²
  (≈ 0.08 at 128², where a 2×2 area average halves it), fixed seed — a shift of a kind no augmentation draws.
- ``isbi_shift_blur.npz``: the test slices blurred (Gaussian, σ 2 px at 256², ≈ 1 px at 128²) — a softer focus,
  also a kind no augmentation draws.
- ``isbi_resplit.npz``: the same stack split the other way round (train 14–29, val 7–12, test 0–5).
- ``thin_noisy.npz``: a procedural set unlike ISBI and the embedded blobs: thin curvilinear foreground (the zero
  crossings of a smooth random field, ~12 % of the pixels), strong noise, per-image exposure; 16 train / 8 val /
  24 test cases, so a small training set.
Deterministic: the same files on every machine (fixed seeds, no clock)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from visionlab.data.segmentation.synthetic import _smooth_field

TRAIN, VAL, TEST = slice(0, 16), slice(17, 23), slice(24, 30)
SHIFTS = {"dark": {"gamma": 1.6, "contrast": 0.6, "offset": 0.05},
          "bright": {"gamma": 0.6, "contrast": 0.75, "offset": 0.2}}
# Outside the augmentation's family (γ 0.6–1.4, contrast 0.75–1.25, offset ±0.25) in every parameter; added after
# the sets above, which stay as they were (same arrays).
FAR_SHIFTS = {"dark_far": {"gamma": 2.2, "contrast": 0.45, "offset": 0.0},
              "bright_far": {"gamma": 0.4, "contrast": 0.55, "offset": 0.35}}
NOISE_SIGMA, NOISE_SEED = 0.16, 33  # in [0, 1] units at the stored 256²; ≈ 0.08 after the 2×2 area resize to 128²
BLUR_SIGMA = 2.0  # pixels at the stored 256²


def shifted(images: np.ndarray, gamma: float, contrast: float, offset: float) -> np.ndarray:
    """uint8 → uint8: x ** gamma, scaled by ``contrast`` and lifted by ``offset`` (in [0, 1] units)."""
    x = images.astype(np.float64) / 255.0
    return np.clip(np.rint((offset + contrast * x**gamma) * 255.0), 0, 255).astype(np.uint8)


def noisy(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """uint8 → uint8: additive Gaussian noise of ``sigma`` (in [0, 1] units), one fixed draw for the whole stack."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return np.clip(np.rint((images.astype(np.float64) / 255.0 + noise) * 255.0), 0, 255).astype(np.uint8)


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 → uint8: each image (N, C, H, W) or (N, H, W) blurred in its two spatial axes only."""
    spatial = (0,) * (images.ndim - 2) + (sigma, sigma)
    return np.clip(np.rint(gaussian_filter(images.astype(np.float64), sigma=spatial)), 0, 255).astype(np.uint8)


def isbi_sets(source: Path) -> dict[str, dict[str, np.ndarray]]:
    with np.load(source) as data:
        x, y = data["x_train"], data["y_train"]
    plain = {"x_train": x[TRAIN], "y_train": y[TRAIN], "x_val": x[VAL], "y_val": y[VAL]}
    sets = {f"isbi_shift_{name}": {**plain, "x_test": shifted(x[TEST], **shift), "y_test": y[TEST]}
            for name, shift in SHIFTS.items()}
    sets.update({f"isbi_shift_{name}": {**plain, "x_test": shifted(x[TEST], **shift), "y_test": y[TEST]}
                 for name, shift in FAR_SHIFTS.items()})
    sets["isbi_shift_noise"] = {**plain, "x_test": noisy(x[TEST], NOISE_SIGMA, NOISE_SEED), "y_test": y[TEST]}
    sets["isbi_shift_blur"] = {**plain, "x_test": blurred(x[TEST], BLUR_SIGMA), "y_test": y[TEST]}
    sets["isbi_resplit"] = {"x_train": x[14:30], "y_train": y[14:30], "x_val": x[7:13], "y_val": y[7:13],
                            "x_test": x[0:6], "y_test": y[0:6]}
    return sets


def thin_case(seed: int, split: int, index: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, split, index])
    field = _smooth_field(rng, size, size / rng.uniform(10.0, 16.0))
    width = rng.uniform(0.12, 0.2)
    mask = (np.abs(field) < width).astype(np.uint8)  # thin ridges along the field's zero crossings
    soft = gaussian_filter(mask.astype(np.float64), sigma=rng.uniform(0.6, 1.2))
    image = rng.uniform(0.3, 0.5) + rng.uniform(0.15, 0.3) * soft + 0.1 * _smooth_field(rng, size, size / 4.0)
    image += 0.06 * _smooth_field(rng, size, 1.2) + rng.normal(0.0, rng.uniform(0.06, 0.12), (size, size))
    image = np.clip(image, 0.0, 1.0) ** rng.uniform(0.7, 1.4)  # per-image exposure
    return np.rint(image * 255.0).astype(np.uint8), mask


def thin_noisy(seed: int = 7) -> dict[str, np.ndarray]:
    arrays = {}
    for split, (name, n) in enumerate((("train", 16), ("val", 8), ("test", 24))):
        cases = [thin_case(seed, split, i) for i in range(n)]
        arrays[f"x_{name}"] = np.stack([c[0] for c in cases])[:, None]
        arrays[f"y_{name}"] = np.stack([c[1] for c in cases])[:, None]
    return arrays


def main(source: str, out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    sets = {**isbi_sets(Path(source)), "thin_noisy": thin_noisy()}
    for name, arrays in sets.items():
        np.savez_compressed(folder / f"{name}.npz", **arrays)
        fg = float(np.mean(arrays["y_test"]))
        print(f"{folder / name}.npz: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
              + f"; test foreground {fg:.1%}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:])
