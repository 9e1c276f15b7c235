"""``visionlab-predict <run folder or checkpoint> <file | folder | glob> ... --out <dir>``: a trained model
applied to image files.

Each file is read the way the run's training read its data (``preprocess``), in batches on the best device
(CUDA, then MPS, else the CPU) with a progress bar on stderr. Classification writes ``predictions.csv``: the
file, its size, mode and the conversion training applied, and the top-k classes with their probabilities.
Segmentation writes one mask PNG per input at the input's own size (0/255 for a binary model, the class index
for a model with K > 1 output channels), optionally the foreground probability (``--probabilities``, 0–255)
and an overlay (``--overlays``), and ``predictions.csv`` with one row per input. A file that cannot be read is
listed in ``skipped.csv`` with the reason, and counted; the exit code is 1 when no file could be predicted, 2
for a bad command line (nothing written), else 0. ``--out`` is never written over without ``--overwrite``."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionlab.config.errors import DataError, UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
PREDICTIONS, SKIPPED, MASKS, PROBABILITIES, OVERLAYS = (
    "predictions.csv",
    "skipped.csv",
    "masks",
    "probabilities",
    "overlays",
)
OVERLAY_COLOUR = np.array([255, 0, 0], np.float32)
OVERLAY_ALPHA = 0.4


# --------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputFile:
    path: Path
    name: str  # as shown in the CSV: relative to the folder it was found in, else the path given


def find_inputs(specs: Iterable[str]) -> list[InputFile]:
    """Files, folders (searched recursively for images) and globs, in order, each file once; a spec that names
    nothing is a DataError."""
    found: list[InputFile] = []
    seen: set[Path] = set()

    def add(path: Path, name: str) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(InputFile(path, name))

    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            images = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not images:
                raise DataError(f"{spec}: a folder without image files ({', '.join(IMAGE_SUFFIXES)}).")
            for image in images:
                add(image, image.relative_to(path).as_posix())
        elif path.exists():
            add(path, str(spec))
        elif glob.has_magic(spec):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise DataError(f"{spec}: the pattern matches no file.")
            for match in matches:
                add(match, str(match))
        else:
            raise DataError(f"{spec}: no such file, folder or pattern.")
    return found


def output_names(inputs: list[InputFile]) -> dict[Path, str]:
    """Each input's output file name (relative, .png): its name with the suffix replaced, or kept as part of
    the name where two inputs would otherwise share one (a.png and a.jpg: a.png.png and a.jpg.png)."""
    plain = {item.path: str(Path(item.name.lstrip("/")).with_suffix(".png")) for item in inputs}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    return {
        path: (name if counts[name] == 1 else f"{Path(item.name.lstrip('/'))}.png")
        for (path, name), item in zip(plain.items(), inputs)
    }


def best_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# --------------------------------------------------------------------------------------------- the model's
# answers
def model_outputs(module, images: np.ndarray, task: str, tta: str = "none"):
    """uint8 N×H×W×C inputs at the model's size → classification: probabilities N×K; segmentation: logits
    N×K×H×W (K = 1 for a binary model; with ``tta`` the logit of the mean flipped probability, as the
    test)."""
    import torch

    device = next(module.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    with torch.inference_mode():
        if task == "classification":
            return torch.softmax(module(batch).float(), dim=1).cpu().numpy()
        if tta != "none":
            from visionlab.tasks.segmentation.module import TTA

            return module.tta_logits(batch, TTA[tta]).float().cpu().numpy()
        return module(batch).float().cpu().numpy()


def masks_from_logits(logits: np.ndarray, logit_threshold: float) -> np.ndarray:
    """N×K×H×W logits → N×H×W masks: a binary model's foreground (logit above the threshold's logit: the
    test's rule) as 0/1, a K-class model's class index (argmax)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > logit_threshold).astype(np.uint8)
    return logits.argmax(axis=1).astype(np.uint8)


def to_size(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """K×h×w logits resized (bilinear) to K×height×width; unchanged at that size already."""
    if logits.shape[1:] == (height, width):
        return logits
    import cv2

    return np.stack(
        [cv2.resize(channel, (width, height), interpolation=cv2.INTER_LINEAR) for channel in logits]
    )


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------- the command
def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("predicting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: a file, not a folder; pass a folder to write into.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(
            f"--out {out}: the folder is not empty; pass another folder, or --overwrite to write over "
            "its predictions."
        )


@dataclass
class Outcome:
    predicted: int
    skipped: list[tuple[str, str]]
    out: Path


def predict(
    run: str,
    specs: list[str],
    out: str | Path,
    top_k: int = 5,
    batch_size: int = 32,
    device: str | None = None,
    tta: str | None = None,
    probabilities: bool = False,
    overlays: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    trust_checkpoint: bool = False,
) -> Outcome:
    """Predict every input file (see the module's docstring); returns how many were predicted and what was
    skipped. Bad arguments are a UserError before anything is written."""

    from visionlab.inference.loading import load_model
    from visionlab.inference.preprocess import read_input

    out = Path(out).expanduser()
    _check_out(out, overwrite)
    if top_k < 1 or batch_size < 1:
        raise DataError(f"--top-k {top_k} / --batch-size {batch_size}: both must be ≥ 1.")
    inputs = find_inputs(specs)
    loaded = load_model(run, trust_checkpoint)
    facts, module = loaded.facts, loaded.module
    tta = facts.tta if tta in (None, "as-trained") else tta
    if facts.task == "segmentation" and tta not in ("none", "flips"):
        raise DataError(f"--tta {tta}: one of as-trained, none, flips.")
    module.to(device or best_device())
    names = output_names(inputs)
    out.mkdir(parents=True, exist_ok=True)
    skipped: list[tuple[str, str]] = []
    rows: list[dict] = []
    k = min(top_k, len(facts.class_names))
    logit_threshold = float(np.log(facts.threshold / (1.0 - facts.threshold)))
    with _progress(len(inputs), progress) as bar:
        task = bar.add_task("predict", total=len(inputs))
        for chunk in _batches(inputs, batch_size):
            read = []
            for item in chunk:
                try:
                    read.append((item, read_input(item.path, facts)))
                except (UserError, OSError) as exc:
                    skipped.append((item.name, str(exc).splitlines()[0]))
            for group in _same_shape(read):
                answers = model_outputs(module, np.stack([x.image for _, x in group]), facts.task, tta)
                for (item, x), answer in zip(group, answers):
                    row = {
                        "file": item.name,
                        "width": x.width,
                        "height": x.height,
                        "mode": x.mode,
                        "conversion": x.conversion,
                    }
                    if facts.task == "classification":
                        order = np.argsort(-answer, kind="stable")[:k]
                        for rank, index in enumerate(order, start=1):
                            row.update(
                                {
                                    f"class_{rank}": facts.class_names[index],
                                    f"index_{rank}": int(index),
                                    f"prob_{rank}": float(answer[index]),
                                }
                            )
                    else:
                        row.update(
                            _write_segmentation(
                                out,
                                names[item.path],
                                item.path,
                                x,
                                answer,
                                logit_threshold,
                                probabilities,
                                overlays,
                            )
                        )
                    rows.append(row)
            bar.advance(task, len(chunk))
    _write_csv(out / PREDICTIONS, rows)
    _write_csv(out / SKIPPED, [{"file": f, "reason": r} for f, r in skipped], ["file", "reason"])
    return Outcome(len(rows), skipped, out)


def _same_shape(read: list) -> list[list]:
    """The read inputs grouped by image shape, in order (one batch per shape)."""
    groups: dict[tuple, list] = {}
    for pair in read:
        groups.setdefault(pair[1].image.shape, []).append(pair)
    return list(groups.values())


def _write_segmentation(
    out: Path,
    name: str,
    path: Path,
    x,
    logits: np.ndarray,
    logit_threshold: float,
    probabilities: bool,
    overlays: bool,
) -> dict:
    from PIL import Image

    logits = to_size(logits, x.height, x.width)
    mask = masks_from_logits(logits[None], logit_threshold)[0]
    binary = logits.shape[0] == 1
    target = out / MASKS / name
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask * 255 if binary else mask).save(target)
    row = {"mask": f"{MASKS}/{name}", "foreground_fraction": float((mask > 0).mean())}
    if probabilities:
        prob = 1.0 / (1.0 + np.exp(-logits[0])) if binary else _softmax(logits).max(axis=0)
        place = out / PROBABILITIES / name
        place.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(prob * 255).astype(np.uint8)).save(place)
        row["probabilities"] = f"{PROBABILITIES}/{name}"
    if overlays:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), np.float32)
        shown = mask > 0
        rgb[shown] = (1 - OVERLAY_ALPHA) * rgb[shown] + OVERLAY_ALPHA * OVERLAY_COLOUR
        place = out / OVERLAYS / name
        place.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(rgb).astype(np.uint8)).save(place)
        row["overlay"] = f"{OVERLAYS}/{name}"
    return row


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


def _write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
