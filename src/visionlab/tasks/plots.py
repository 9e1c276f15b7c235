"""Matplotlib figures shared by W&B logging and the reports (headless backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def confusion_figure(confusion: np.ndarray, title: str = "Confusion matrix (row-normalised)"):
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros_like(confusion, dtype=float), where=rows > 0)
    n = len(confusion)
    fig, ax = plt.subplots(figsize=(max(4, n * 0.16), max(4, n * 0.16)))
    im = ax.imshow(normalised, cmap="viridis", vmin=0, vmax=1)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
