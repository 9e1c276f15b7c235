"""Report figures as PNG bytes (matplotlib, Agg backend: no display needed), written to figures/ and embedded in HTML."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from visionlab.report.stats import TaskStats, curve_band


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def curves(task: TaskStats) -> bytes | None:
    """Train/val loss and metric per epoch: one line per variant (mean over seeds) with a min–max band."""
    keys = list(task.spec.curve_keys)
    bands = {variant: {key: curve_band(runs, key) for key in keys} for variant, runs in task.runs_by_variant.items()}
    if not any(band for per_key in bands.values() for band in per_key.values()):
        return None
    rows = (len(keys) + 1) // 2  # two panels per row; a task may plot more than four curves
    fig, axes = plt.subplots(rows, 2, figsize=(10, 3.5 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes.flat, keys):
        for i, (variant, per_key) in enumerate(sorted(bands.items())):
            band = per_key[key]
            if band is None:
                continue
            epochs, mean, low, high = band
            colour = colours[i % len(colours)]
            ax.plot(epochs, mean, marker="o", markersize=3, color=colour, label=variant)
            ax.fill_between(epochs, low, high, color=colour, alpha=0.2, linewidth=0)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    fig.subplots_adjust(hspace=0.35)
    for ax in axes.flat[max(0, len(keys) - 2):len(keys)]:
        ax.set_xlabel("epoch")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if not handles:
        handles, labels = next((ax.get_legend_handles_labels() for ax in axes.flat if ax.lines), ([], []))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("mean over seeds, band = min–max")
    return _png(fig)


def confusion(matrix: np.ndarray, title: str) -> bytes:
    """Row-normalised confusion matrix (each row: where a true class's images went)."""
    rates = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
    ticks = np.arange(0, len(matrix), 5)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    return _png(fig)


def _show(ax, image: np.ndarray, title: str, mask: bool = False) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=1 if mask else 255, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def fixed_case(image: np.ndarray, mask: np.ndarray, predictions: dict[str, np.ndarray], index) -> bytes:
    """One fixed test image: input, true mask and each variant's predicted mask side by side."""
    fig, axes = plt.subplots(1, 2 + len(predictions), figsize=(2.6 * (2 + len(predictions)), 2.9), squeeze=False)
    _show(axes[0, 0], image, f"input (test case {index})")
    _show(axes[0, 1], mask, "true mask", mask=True)
    for ax, (variant, prediction) in zip(axes[0, 2:], predictions.items()):
        _show(ax, prediction, variant, mask=True)
    return _png(fig)


def worst_cases(cases: list[tuple[str, dict, float | None]]) -> bytes:
    """Per variant (one row each): its worst test image, the true mask and its prediction."""
    fig, axes = plt.subplots(len(cases), 3, figsize=(8, 2.8 * len(cases)), squeeze=False)
    for row, (variant, qualitative, f1) in zip(axes, cases):
        score = f", F1 {f1:.4f}" if f1 is not None else ""
        _show(row[0], qualitative["worst_image"], f"{variant}: case {qualitative['worst_index']}{score}")
        _show(row[1], qualitative["worst_mask"], "true mask", mask=True)
        _show(row[2], qualitative["worst_pred"], "prediction", mask=True)
    return _png(fig)
