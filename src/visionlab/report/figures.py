"""Report figures as PNG bytes (matplotlib, Agg backend: no display needed), written to figures/ and embedded in HTML."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from visionlab.report.stats import TaskStats, curve_band
from visionlab.run_record.metric_keys import lr_column


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _panel(ax, bands: dict, keys: list[str], ylabel: str, log: bool = False) -> None:
    """Mean over seeds (min–max band) per variant; train solid, validation dashed; epochs counted from 1."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (variant, per_key) in enumerate(sorted(bands.items())):
        for key, style in zip(keys, ("-", "--")):
            band = per_key.get(key)
            if band is None:
                continue
            epochs, mean, low, high = band
            colour = colours[i % len(colours)]
            ax.plot(epochs + 1, mean, style, marker="o", markersize=3, color=colour, label=f"{variant} {key}")
            ax.fill_between(epochs + 1, low, high, color=colour, alpha=0.15, linewidth=0)
    if log and any(line.get_ydata().min() > 0 for line in ax.lines):
        ax.set_yscale("log")
    ax.set_xlabel("epoch (counted from 1, as in the tables)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def curves(task: TaskStats) -> bytes | None:
    """Loss (log scale), the task's metric, any validation-only curves (segmentation: the background class) and
    the learning rate per epoch, one colour per variant."""
    keys = list(task.spec.curve_keys)
    lr = lr_column(0)
    bands = {variant: {key: curve_band(runs, key) for key in [*keys, lr]}
             for variant, runs in task.runs_by_variant.items()}
    if not any(band for per_key in bands.values() for band in per_key.values()):
        return None
    losses, scores, extra = keys[:2], keys[2:4], keys[4:]  # extra: validation-only curves (e.g. the other class)
    panels = [(losses, "loss (log scale)", True, "loss: train solid, validation dashed")]
    metric = task.spec.metrics.metric(scores[0]).label
    panels.append((scores, metric, False, f"{metric}: train solid, validation dashed"))
    for key in extra:
        label = task.spec.metrics.metric(key).label
        panels.append(([key], label, False, f"{label}: validation"))
    panels.append(([lr], "learning rate (log scale)", True, "learning rate (parameter group 0)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.4))
    for ax, (panel_keys, ylabel, log, title) in zip(axes, panels):
        _panel(ax, bands, panel_keys, ylabel, log=log)
        ax.set_title(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = next((ax.get_legend_handles_labels() for ax in axes if ax.lines), ([], []))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), bbox_to_anchor=(0.5, -0.12),
               fontsize=8)
    fig.suptitle("mean over seeds, band = min–max over seeds")
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


def misclassified(images: np.ndarray, true: np.ndarray, pred: np.ndarray, title: str, limit: int = 24) -> bytes:
    """A grid of wrongly classified images, each captioned true → predicted class."""
    n = min(len(images), limit)
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            image = images[i]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", interpolation="nearest")
            ax.set_title(f"{int(true[i])} → {int(pred[i])}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


ERROR_COLOURS = {"false positive": (1.0, 0.1, 0.1), "false negative": (0.1, 0.45, 1.0)}


def error_overlay(image: np.ndarray, mask: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The grey input with false positives (predicted foreground, truly background) in red and false negatives
    (missed foreground) in blue; correct pixels keep the input."""
    grey = np.repeat((np.asarray(image, float) / 255.0)[..., None], 3, axis=-1)
    mask, pred = np.asarray(mask).astype(bool), np.asarray(pred).astype(bool)
    for where, colour in ((pred & ~mask, ERROR_COLOURS["false positive"]),
                          (mask & ~pred, ERROR_COLOURS["false negative"])):
        grey[where] = 0.35 * grey[where] + 0.65 * np.array(colour)
    return grey


def cases(rows: list[tuple[str, dict]]) -> bytes:
    """Per variant (one row): the fixed, best and worst test case with error overlays, each titled with its F1."""
    names = ("fixed", "best", "worst")
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3.1 * len(rows)), squeeze=False)
    for axes_row, (variant, q) in zip(axes, rows):
        for ax, name in zip(axes_row, names):
            ax.axis("off")
            if f"{name}_image" not in q:
                continue
            ax.imshow(error_overlay(q[f"{name}_image"], q[f"{name}_mask"], q[f"{name}_pred"]), interpolation="nearest")
            f1 = f", F1 {float(q[f'{name}_f1']):.4f}" if f"{name}_f1" in q else ""
            ax.set_title(f"{variant}: {name} case {int(q[f'{name}_index'])}{f1}", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ERROR_COLOURS.values()]
    fig.legend(handles, list(ERROR_COLOURS), loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.02))
    return _png(fig)
