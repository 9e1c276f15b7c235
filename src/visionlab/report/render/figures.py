"""Report figures as PNG bytes (matplotlib, Agg backend: no display needed), written to figures/ and embedded
in HTML.

Every figure is at most ``WIDTH_IN`` × ``DPI`` = 840 px wide, so a 900 px window shows it at full size (text
stays readable); panels sit two to a row."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from functools import partial

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from visionlab.record.layout import QUALITATIVE_CASES
from visionlab.record.metric_keys import EPOCH, STEP, lr_column
from visionlab.report.analysis.stats import TaskStats, counted

DPI = 100
WIDTH_IN = 8.4


TITLE_CHAR_PX = 6.0  # a fontsize-9 character at DPI 100, on average (DejaVu Sans)


def fitted_title(title: str, width_in: float) -> str:
    """``title`` wrapped onto as many lines as it needs to fit ``width_in`` (a long variant or class name used
    to be clipped at the figure's edge)."""
    import textwrap

    width = max(20, int(width_in * DPI * 0.9 // TITLE_CHAR_PX))
    return "\n".join(textwrap.wrap(title, width, break_long_words=True, break_on_hyphens=False)) or title


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def run_series(runs, key: str, by: str = EPOCH) -> list[tuple[object, np.ndarray, np.ndarray]]:
    """(seed, x, values) of ``key`` for each counted run that logged it; x is the epoch counted from 1, or
    with ``by=STEP`` the optimizer steps done at the end of that epoch."""
    out = []
    for run in runs:
        if not counted(run):
            continue
        rows = sorted(
            (int(r[EPOCH]), r.get(STEP), float(r[key]))
            for r in run.metrics
            if isinstance(r.get(key), (int, float)) and isinstance(r.get(EPOCH), (int, float))
        )
        if by == STEP:
            rows = [row for row in rows if isinstance(row[1], (int, float))]
        if rows:
            x = [int(step) if by == STEP else epoch + 1 for epoch, step, _ in rows]
            out.append((run.seed, np.array(x), np.array([v for _, _, v in rows])))
    return out


def steps_per_epoch(runs) -> float | None:
    """Optimizer steps per epoch of the variant's counted runs (from metrics.csv's step column), None if
    unknown."""
    rates = [
        float(r[STEP]) / (int(r[EPOCH]) + 1)
        for run in runs
        if counted(run)
        for r in run.metrics
        if isinstance(r.get(STEP), (int, float)) and isinstance(r.get(EPOCH), (int, float)) and r[STEP] > 0
    ]
    return float(np.median(rates)) if rates else None


def curve_axis(runs_by_variant: dict) -> str:
    """``step`` when the variants' epochs hold different numbers of optimizer steps (an 8-step epoch and a
    40-step epoch are not the same amount of training), else ``epoch``."""
    rates = [r for runs in runs_by_variant.values() if (r := steps_per_epoch(runs))]
    return STEP if rates and max(rates) > 1.05 * min(rates) else EPOCH


def common_mean(series: list[tuple[object, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean over the runs at the epochs every run reached (after an early stop a mean would be over the
    surviving runs only, so it is not drawn there)."""
    if not series:
        return None
    last = min(int(epochs.max()) for _, epochs, _ in series)
    epochs = np.array([e for e in series[0][1] if e <= last and all(e in s[1] for s in series)])
    if not len(epochs):
        return None
    mean = np.array([np.mean([values[list(ep).index(e)] for _, ep, values in series]) for e in epochs])
    return epochs, mean


def _colours(n: int = 0) -> list:
    """The default cycle, or 20 distinct colours when more variants than it has (no two variants share
    one)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return cycle if n <= len(cycle) else [plt.get_cmap("tab20")(i) for i in range(20)]


def _short_label(names: list[str], variants: list[str]) -> str:
    """A legend label for one schedule line: the names when few, else a count (the caption lists them all)."""
    if len(names) == len(variants):
        return f"all {len(names)} variants"
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} variants ({names[0]}, …)"


X_LABELS = {EPOCH: "epoch (from 1)", STEP: "optimizer steps (epochs differ in length)"}


def _panel(
    ax, series_by_variant: dict, colours: dict, style: str = "-", log: bool = False, axis: str = EPOCH
) -> None:
    """Each seed a thin line, the mean over seeds a thick one up to the last epoch every seed reached."""
    for variant, series in series_by_variant.items():
        colour = colours[variant]
        for _, x, values in series:
            ax.plot(x, values, style, color=colour, linewidth=0.7, alpha=0.45)
        mean = common_mean(series)
        if mean is not None:
            ax.plot(mean[0], mean[1], style, color=colour, linewidth=2.0)
    if log and ax.lines and all(np.min(line.get_ydata()) > 0 for line in ax.lines):
        ax.set_yscale("log")
    ax.set_xlabel(X_LABELS[axis], fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.tick_params(labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _same_lr(series_by_variant: dict) -> list[tuple[tuple, list[str]]]:
    """Variants grouped by the same learning-rate schedule (each variant's longest run; two schedules are the
    same when they agree at every point both reached, on the same x: drawn against optimizer steps, an 8-step
    and a 40-step epoch schedule with equal per-epoch rates are different schedules), so equal schedules are
    one line that names them all. Returns (the longest run's (seed, epochs, rates), variants) per group."""
    groups: list[tuple[tuple, list[str]]] = []
    for variant, series in sorted(series_by_variant.items()):
        if not series:
            continue
        longest = max(series, key=lambda s: len(s[1]))
        for i, (rep, names) in enumerate(groups):
            n = min(len(rep[2]), len(longest[2]))
            same_x = np.array_equal(np.asarray(rep[1][:n]), np.asarray(longest[1][:n]))  # steps differ too
            if same_x and np.allclose(rep[2][:n], longest[2][:n], rtol=1e-9, atol=0):
                names.append(variant)
                if len(longest[2]) > len(rep[2]):
                    groups[i] = (longest, names)
                break
        else:
            groups.append((longest, [variant]))
    return groups


def curves(
    task: TaskStats, panels: list[tuple[list[str], str, bool]]
) -> tuple[Callable[[], bytes] | None, list[str], str]:
    """One panel per entry of ``panels`` (keys: solid for the first, dashed for a second; title; log scale),
    then the learning rate with identical schedules drawn once. Returns what draws the PNG (None: nothing to
    draw), the learning-rate groups named, and the x axis (``curve_axis``: epochs, or optimizer steps when
    the variants' epochs differ in length)."""
    axis = curve_axis(task.runs_by_variant)
    every = sorted(task.runs_by_variant)
    data = [
        ([{v: run_series(task.runs_by_variant[v], k, axis) for v in every} for k in keys], title, log)
        for keys, title, log in panels
    ]
    data = [d for d in data if any(s for per in d[0] for s in per.values())]
    lr = {v: run_series(task.runs_by_variant[v], lr_column(0), axis) for v in every}
    if not data:
        return None, [], axis
    # a variant with no curve (checkpoint evaluations, train=false) has no line, so no legend entry or colour
    variants = [v for v in every if any(per.get(v) for d in data for per in d[0]) or lr.get(v)]
    palette = _colours(len(variants))
    colours = {v: palette[i % len(palette)] for i, v in enumerate(variants)}
    data = [([{v: per[v] for v in variants} for per in per_key], title, log) for per_key, title, log in data]
    lr = {v: lr[v] for v in variants}
    same_lr = _same_lr(lr) if any(lr.values()) else []
    lr_words = [f"{', '.join(names)}: one line (the same schedule)" for _, names in same_lr if len(names) > 1]
    return partial(_draw_curves, variants, colours, data, same_lr, axis), lr_words, axis


def _draw_curves(variants: list[str], colours: dict, data: list, same_lr: list, axis: str = EPOCH) -> bytes:
    return _png(curves_figure(variants, colours, data, same_lr, axis))


LEGEND_ROW_IN, CHAR_PX, HANDLE_PX = (
    0.17,
    6.2,
    48,
)  # fontsize 8 at DPI 100: a legend row's height, a character's width


def _legend_layout(labels: list[str], width_in: float, max_columns: int) -> tuple[int, float]:
    """(columns, height in inches) of a legend of ``labels`` that fits ``width_in``: as many columns as the
    longest label allows, as many rows as it then needs (a long list of long variant names gets more rows,
    never labels cut off at the figure's edge)."""
    column_px = CHAR_PX * max(map(len, labels)) + HANDLE_PX
    columns = max(1, min(max_columns, int(width_in * DPI // column_px), len(labels)))
    return columns, LEGEND_ROW_IN * math.ceil(len(labels) / columns) + 0.2


def curves_figure(variants: list[str], colours: dict, data: list, same_lr: list, axis: str = EPOCH):
    """The curves figure (see ``curves``); its legend goes into an empty panel where it fits there, else below
    the panels with the room its rows need."""
    n_panels = len(data) + (1 if same_lr else 0)
    rows = math.ceil(n_panels / 2)
    handles = [Line2D([], [], color=colours[v], linewidth=2, label=v) for v in variants]
    handles += [
        Line2D([], [], color="0.2", linestyle="-", label="train"),
        Line2D([], [], color="0.2", linestyle="--", label="validation"),
        Line2D([], [], color="0.2", linewidth=0.7, alpha=0.5, label="one seed"),
        Line2D([], [], color="0.2", linewidth=2.0, label="mean over seeds"),
    ]
    labels = [h.get_label() for h in handles]
    in_panel = n_panels % 2 == 1 and _legend_layout(labels, WIDTH_IN / 2 - 0.3, 2)[1] <= 2.7
    columns, legend_h = _legend_layout(labels, WIDTH_IN - 0.2, 2 if in_panel else 5)
    height = 2.9 * rows + (0 if in_panel else legend_h)
    fig, axes = plt.subplots(rows, 2, figsize=(WIDTH_IN, height), squeeze=False)
    flat = list(axes.flat)
    for ax, (per_key, title, log) in zip(flat, data):
        for series, style in zip(per_key, ("-", "--")):
            _panel(ax, series, colours, style, log, axis)
        ax.set_title(fitted_title(title, WIDTH_IN / 2), fontsize=9)
    if same_lr:
        ax = flat[len(data)]
        for (_, x, values), names in same_lr:
            ax.plot(
                x,
                values,
                "-",
                color=colours[names[0]] if len(names) == 1 else "0.3",
                linewidth=1.6,
                label=_short_label(names, variants) if len(names) > 1 else None,
            )
        if ax.lines and all(np.min(line.get_ydata()) > 0 for line in ax.lines):
            ax.set_yscale("log")
        ax.set_title("learning rate (group 0); equal schedules drawn once", fontsize=9)
        ax.set_xlabel(X_LABELS[axis], fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=8)
        if any(line.get_label() and not line.get_label().startswith("_") for line in ax.lines):
            ax.legend(fontsize=7, loc="best")
    for ax in flat[n_panels:]:
        ax.axis("off")
    if in_panel:  # the empty panel holds the legend
        flat[n_panels].legend(handles=handles, loc="center", fontsize=8, frameon=False, ncol=columns)
        fig.tight_layout()
    else:
        fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, legend_h / height, 1, 1))
    return fig


def confusion(matrix: np.ndarray, title: str) -> bytes:
    """Row-normalised confusion matrix (each row: where a true class's images went)."""
    rates = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
    ticks = np.arange(0, len(matrix), max(1, len(matrix) // 9))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(fitted_title(title, 6.4 * 0.75), fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    return _png(fig)


def sample_mistakes(records: list[tuple[object, dict]], limit: int = 24) -> list[tuple[object, int]]:
    """(seed, index) of up to ``limit`` mistakes spread over true classes and seeds: classes in turn (most
    mistakes first), within a class the seeds in turn, within a seed's class every few images (neighbours in
    data order are often frames of one track); an image already picked from another seed is skipped."""
    per_class: dict[int, list[tuple[object, int]]] = {}
    for seed, wrong in records:
        true = np.asarray(wrong.get("true", []))
        for cls in sorted(set(true.tolist())):
            idx = np.flatnonzero(true == cls)
            step = max(1, len(idx) // 4)
            spread = list(idx[::step]) + [i for i in idx if i not in set(idx[::step])]
            per_class.setdefault(int(cls), []).append([(seed, int(i)) for i in spread])
    queues = {
        c: [item for group in zip_longest_lists(lists) for item in group] for c, lists in per_class.items()
    }
    order = sorted(queues, key=lambda c: (-len(queues[c]), c))
    by_seed = dict(records)
    picked: list[tuple[object, int]] = []
    seen: set[bytes] = set()  # the same image misclassified by several seeds is shown once
    while len(picked) < limit and any(queues[c] for c in order):
        for c in order:
            while queues[c] and len(picked) < limit:
                seed, i = queues[c].pop(0)
                images = by_seed[seed].get("images")
                key = np.asarray(images[i]).tobytes() if images is not None and i < len(images) else (seed, i)
                if key not in seen:
                    seen.add(key)
                    picked.append((seed, i))
                    break
    return picked


def zip_longest_lists(lists: list[list]) -> list[list]:
    """[[a0, b0], [a1, b1], [a2]] from [[a0, a1, a2], [b0, b1]]."""
    return [
        [items[i] for items in lists if i < len(items)]
        for i in range(max((len(x) for x in lists), default=0))
    ]


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    image = image[..., :3].astype(float)
    return image / 255.0 if image.max() > 1 else image


def misclassified(
    images: list[np.ndarray], true: list[int], pred: list[int], captions: list[str], title: str
) -> bytes:
    """A grid of wrongly classified images, each captioned with its own text (true → predicted, seed): one
    mosaic in one axes (fast, whatever the number of images)."""
    n = len(images)
    cols = min(max(n, 1), 8)
    rows = max(1, (n + cols - 1) // cols)
    side = max((max(np.asarray(im).shape[:2]) for im in images), default=28)
    gap, label = max(2, side // 10), max(8, side // 2)
    cell_w, cell_h = side + gap, side + label + gap
    mosaic = np.ones((rows * cell_h, cols * cell_w, 3))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, WIDTH_IN * rows * cell_h / (cols * cell_w) + 0.4))
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        tile = _rgb(image)
        h, w = tile.shape[:2]
        mosaic[r * cell_h + label : r * cell_h + label + h, c * cell_w : c * cell_w + w] = tile
        ax.text(
            c * cell_w + side / 2, r * cell_h + label * 0.8, captions[i], ha="center", va="bottom", fontsize=7
        )
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    ax.set_title(fitted_title(title, fig.get_figwidth()), fontsize=9)
    fig.tight_layout()
    return _png(fig)


ERROR_COLOURS = {"false positive": (1.0, 0.1, 0.1), "false negative": (0.1, 0.45, 1.0)}


def error_overlay(image: np.ndarray, mask: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The grey input with false positives of the foreground class (predicted foreground, truly background) in
    red and its false negatives (truly foreground, predicted background) in blue; correct pixels keep the
    input."""
    grey = np.repeat((np.asarray(image, float) / 255.0)[..., None], 3, axis=-1)
    mask, pred = np.asarray(mask).astype(bool), np.asarray(pred).astype(bool)
    for where, colour in (
        (pred & ~mask, ERROR_COLOURS["false positive"]),
        (mask & ~pred, ERROR_COLOURS["false negative"]),
    ):
        grey[where] = 0.35 * grey[where] + 0.65 * np.array(colour)
    return grey


def _panel_rgb(panel: np.ndarray, top: float) -> np.ndarray:
    """A grey (H×W, 0..``top``) or colour (H×W×3, 0..1) panel as H×W×3 floats in 0..1."""
    panel = np.asarray(panel, float)
    return panel if panel.ndim == 3 else np.repeat(np.clip(panel / top, 0, 1)[..., None], 3, axis=-1)


MOSAIC_GAP = 0.8  # grey between the panels: an all-white mask panel would melt into a white page


def case_mosaic(tiles: list[list[np.ndarray]], gap: int) -> np.ndarray:
    """Rows of RGB tiles as one image on grey; a smaller tile sits in the top-left of its cell."""
    height = max(t.shape[0] for row in tiles for t in row)
    width = max(t.shape[1] for row in tiles for t in row)
    columns = max(len(row) for row in tiles)
    out = np.full((len(tiles) * (height + gap) + gap, columns * (width + gap) + gap, 3), MOSAIC_GAP)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            y, x = gap + r * (height + gap), gap + c * (width + gap)
            out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return out


CASE_LABELS = {
    "fixed": "fixed",
    "best": "best",
    "worst": "worst",
    "worst_2": "2nd worst",
    "worst_3": "3rd worst",
}


def cases(variant: str, q: dict, names: tuple[str, str]) -> bytes:
    """One variant's kept test cases (rows: fixed, best, the worst ones): input, ground truth, prediction and
    the errors (columns); ``names`` = (label 0, label 1), label 1 shown white in the masks. The panels are one
    image in one axes (twelve axes took ~1 s per figure, and a page has a figure per variant)."""
    background, foreground = names
    rows = [n for n in QUALITATIVE_CASES if f"{n}_image" in q]
    columns = ("input", f"ground truth (white: {foreground})", f"prediction (white: {foreground})", "errors")
    tiles = [
        [
            _panel_rgb(q[f"{n}_image"], 255),
            _panel_rgb(q[f"{n}_mask"], 1),
            _panel_rgb(q[f"{n}_pred"], 1),
            error_overlay(q[f"{n}_image"], q[f"{n}_mask"], q[f"{n}_pred"]),
        ]
        for n in rows
    ]
    height = 2.1 * max(1, len(rows)) + 0.8
    fig = plt.figure(figsize=(WIDTH_IN, height))
    ax = fig.add_axes((0.45 / WIDTH_IN, 0.4 / height, 1 - 0.55 / WIDTH_IN, 1 - 0.95 / height))
    ax.set_axis_off()
    if tiles:
        gap = max(2, max(max(t.shape[:2]) for row in tiles for t in row) // 20)
        mosaic = case_mosaic(tiles, gap)
        ax.imshow(mosaic, interpolation="nearest")
        cell_h, cell_w = (mosaic.shape[0] - gap) / len(rows), (mosaic.shape[1] - gap) / len(columns)
        for c, column in enumerate(columns):
            ax.text(gap / 2 + (c + 0.5) * cell_w, -gap, column, ha="center", va="bottom", fontsize=8)
        for r, name in enumerate(rows):
            f1 = f"\nF1 {float(q[f'{name}_f1']):.4f}" if f"{name}_f1" in q else ""
            source = (
                f"\n{str(q[f'{name}_source'])[:28]}" if f"{name}_source" in q else ""
            )  # file or npz index
            label = f"{CASE_LABELS[name]} case {int(q[f'{name}_index'])}{source}{f1}"
            ax.text(
                -gap,
                gap / 2 + (r + 0.5) * cell_h,
                label,
                ha="right",
                va="center",
                rotation=90,
                fontsize=8,
                multialignment="center",
            )
    handles = [
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=ERROR_COLOURS["false positive"],
            label=f"predicted {foreground}, truly {background}",
        ),
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=ERROR_COLOURS["false negative"],
            label=f"truly {foreground}, predicted {background}",
        ),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{variant} (first counted seed)", fontsize=9)
    return _png(fig)


def class_confusion(matrix: np.ndarray, class_names: tuple[str, ...], title: str) -> bytes:
    """K classes: the test pixels' row-normalised confusion matrix with the class names on both axes and each
    cell's share written in it (K is small: CamVid's 11)."""
    matrix = np.asarray(matrix, float)
    rates = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    k = len(matrix)
    side = min(9.0, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
    labels = [str(n)[:18] for n in class_names[:k]]
    ax.set_xticks(np.arange(k), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(np.arange(k), labels, fontsize=7)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if rates[i, j] >= 0.005:
                    ax.text(
                        j,
                        i,
                        f"{100 * rates[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="black" if rates[i, j] > 0.6 else "white",
                    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class's pixels (cells: %)")
    fig.tight_layout()
    return _png(fig)


def _coloured(mask: np.ndarray, colours: np.ndarray, ignore: int | None) -> np.ndarray:
    """Class indices → RGB in 0..1 through the palette (last row: ignored pixels / any value outside it)."""
    mask = np.asarray(mask).astype(np.int64)
    k = len(colours) - 1
    index = np.where((mask >= 0) & (mask < k), mask, k)
    return colours[index]


def class_cases(
    variant: str, q: dict, class_names: tuple[str, ...], colours: np.ndarray, ignore: int | None
) -> bytes:
    """One variant's kept K-class test cases (rows): input, ground truth and prediction in the palette, and
    the errors (wrong class red over the input; ignored pixels dark), with a legend of the classes."""
    rows = [n for n in QUALITATIVE_CASES if f"{n}_image" in q]
    columns = ("input", "ground truth", "prediction", "errors (red)")
    tiles = []
    for n in rows:
        image = np.asarray(q[f"{n}_image"], float) / 255.0
        image = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        mask, pred = np.asarray(q[f"{n}_mask"]), np.asarray(q[f"{n}_pred"])
        valid = mask != ignore if ignore is not None else np.ones(mask.shape, bool)
        errors = image.copy()
        wrong = valid & (mask != pred)
        errors[wrong] = 0.35 * errors[wrong] + 0.65 * np.array(ERROR_COLOURS["false positive"])
        errors[~valid] *= 0.3
        tiles.append([image, _coloured(mask, colours, ignore), _coloured(pred, colours, ignore), errors])
    height = 2.1 * max(1, len(rows)) + 1.2
    fig = plt.figure(figsize=(WIDTH_IN, height))
    ax = fig.add_axes((0.45 / WIDTH_IN, 0.8 / height, 1 - 0.55 / WIDTH_IN, 1 - 1.35 / height))
    ax.set_axis_off()
    if tiles:
        gap = max(2, max(max(t.shape[:2]) for row in tiles for t in row) // 20)
        mosaic = case_mosaic(tiles, gap)
        ax.imshow(mosaic, interpolation="nearest")
        cell_h, cell_w = (mosaic.shape[0] - gap) / len(rows), (mosaic.shape[1] - gap) / len(columns)
        for c, column in enumerate(columns):
            ax.text(gap / 2 + (c + 0.5) * cell_w, -gap, column, ha="center", va="bottom", fontsize=8)
        for r, name in enumerate(rows):
            miou = f"\nmIoU {float(q[f'{name}_miou']):.3f}" if f"{name}_miou" in q else ""
            source = f"\n{str(q[f'{name}_source'])[:28]}" if f"{name}_source" in q else ""
            label = f"{CASE_LABELS[name]} case {int(q[f'{name}_index'])}{source}{miou}"
            ax.text(
                -gap,
                gap / 2 + (r + 0.5) * cell_h,
                label,
                ha="right",
                va="center",
                rotation=90,
                fontsize=7,
                multialignment="center",
            )
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=tuple(colours[i]), label=str(name)[:18])
        for i, name in enumerate(class_names)
    ]
    if ignore is not None:
        handles.append(plt.Rectangle((0, 0), 1, 1, color=tuple(colours[-1]), label=f"ignored ({ignore})"))
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
    fig.suptitle(f"{variant} (first counted seed)", fontsize=9)
    return _png(fig)
