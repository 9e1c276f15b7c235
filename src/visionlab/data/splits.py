"""Validation splits that keep whole groups on one side, so near-duplicate frames never leak across."""

from __future__ import annotations

import numpy as np

from visionlab.config.errors import ConfigError


def check_fraction(key: str, value, allow_zero: bool = False) -> float:
    """The one check of a split fraction (``data.val_fraction``, ``data.test_fraction``): in (0, 1), or [0,
    1) where 0 means "no such split"."""
    low_ok = (lambda v: v >= 0) if allow_zero else (lambda v: v > 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok(value) and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{key}={value!r} is not valid: expected a fraction in {interval}; e.g. {key}=0.2.")
    return float(value)


def group_split(
    labels: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int, key: str = "data.val_fraction"
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices by (label, group) pairs, stratified per label; returns sorted (train_idx, val_idx).

    Every label with at least two groups gets at least one validation group. The split depends only on the
    seed and the data, never on the order of calls.
    """
    check_fraction(key, val_fraction)
    labels = np.asarray(labels, np.int64)
    groups = np.asarray(groups, np.int64)
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        in_label = labels == label
        label_groups = np.unique(groups[in_label])
        if len(label_groups) < 2:
            continue
        n_val = min(len(label_groups) - 1, max(1, round(val_fraction * len(label_groups))))
        chosen = rng.choice(label_groups, size=n_val, replace=False)
        val_mask |= in_label & np.isin(groups, chosen)
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def held_out_split(
    labels: np.ndarray, groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices by ``group_split``: test first (``test_fraction`` of the groups of each
    label; none when 0), then val (``val_fraction`` of the whole) from the rest. With every case its own group
    this is a random split stratified by label."""
    labels, groups = np.asarray(labels, np.int64), np.asarray(groups, np.int64)
    rest, test = np.arange(len(labels)), np.zeros(0, np.int64)
    if test_fraction > 0:
        rest, test = group_split(labels, groups, test_fraction, seed, key="data.test_fraction")
    share = val_fraction / (1.0 - test_fraction)
    if not 0.0 < share < 1.0:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction must be < 1, got {val_fraction} + {test_fraction}."
        )
    train, val = group_split(labels[rest], groups[rest], share, seed + 1 if test_fraction > 0 else seed)
    return rest[train], rest[val], test


def random_split(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Seeded split of ``range(n)`` into consecutive chunks of the given fractions (last takes the rest)."""
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([round(f * n) for f in fractions[:-1]])
    return [np.sort(part) for part in np.split(perm, bounds)]


def contiguous_split(n: int, held_out: tuple[int, ...]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Blocks of consecutive indices for ordered data (slices of a stack, frames of a video), so that no
    held-out case has a training neighbour: ``[train][gap][block 1][gap][block 2]…`` — training from the
    start, then each held-out block of the given size, every block after one unused gap index. Returns (train,
    blocks, gaps)."""
    n_train = n - sum(held_out) - len(held_out)
    if n_train < 1 or min(held_out, default=1) < 1:
        raise ValueError(
            f"{n} ordered cases cannot hold a training block, held-out blocks of {list(held_out)} "
            f"and {len(held_out)} gap case(s)"
        )
    blocks, gaps, start = [], [], n_train
    for size in held_out:
        gaps.append(start)
        blocks.append(np.arange(start + 1, start + 1 + size))
        start += 1 + size
    return np.arange(n_train), blocks, np.asarray(gaps, dtype=np.int64)
