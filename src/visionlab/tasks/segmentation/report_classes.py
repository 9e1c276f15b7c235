"""K-class segmentation detail (``multiclass_segmentation`` runs): per-class IoU and Dice with their names,
mean ± std over seeds; which classes never learned (health ``stuck_classes``); the class-confusion matrix of
the test pixels summed over seeds; each variant's kept test cases drawn in the data's palette with a legend;
the worst cases by name (file or npz index).

Every number comes from the run records (summary.json ``test``: ``test/iou_c<k>``, ``test/dice_c<k>``,
split-level from the summed confusion matrix; ``confusion_matrix.csv``; ``test_cases.csv``;
``qualitative.npz``), read as data."""

from __future__ import annotations

from functools import partial

import numpy as np

from visionlab.record import metric_keys as keys
from visionlab.record.layout import CONFUSION, QUALITATIVE, QUALITATIVE_CASES, TEST_CASES
from visionlab.report.analysis.classes import ClassNames
from visionlab.report.analysis.stats import TaskStats, counted, run_values
from visionlab.report.render import figures
from visionlab.report.render.document import Figure, Paragraph, Table
from visionlab.report.render.escape import md
from visionlab.report.render.format import MISSING, fmt
from visionlab.report.render.slugs import slug
from visionlab.tasks.registry import TaskReport

MAX_CLASSES = 256  # masks are uint8: a record claiming more classes is shown up to this many
WORST_SHOWN = 8


def _num_classes(task: TaskStats) -> int:
    found = 0
    for runs in task.runs_by_variant.values():
        for run in runs:
            section = run.summary.get(keys.MULTICLASS_TASK)
            n = section.get("num_classes") if isinstance(section, dict) else None
            if isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= MAX_CLASSES:
                found = max(found, n)
            prefix = keys.class_key("test", "iou", 0)[:-1]  # the per-class IoU keys, without the class number
            for key in run_values(run, "test"):
                if str(key).startswith(prefix) and str(key)[len(prefix) :].isdigit():
                    found = max(found, min(MAX_CLASSES, int(str(key)[len(prefix) :]) + 1))
    return found


def palette_of(task: TaskStats, num_classes: int) -> np.ndarray:
    """(K + 1, 3) colours in 0..1: ``data.palette`` of the first run that has a valid one (entry k = class k),
    else a fixed qualitative palette; the last row is for ignored pixels (black unless the palette gives
    it)."""
    for runs in task.runs_by_variant.values():
        for run in runs:
            data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
            colours = data.get("palette")
            if (
                isinstance(colours, list)
                and num_classes <= len(colours) <= MAX_CLASSES + 1
                and all(
                    isinstance(c, list)
                    and len(c) == 3
                    and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
                    for c in colours
                )
            ):
                table = np.array(colours[: num_classes + 1], float) / 255.0
                return table if len(table) > num_classes else np.vstack([table, np.zeros((1, 3))])
    from matplotlib import colormaps

    base = colormaps["tab20"](np.arange(num_classes) % 20)[:, :3]
    return np.vstack([base, np.zeros((1, 3))])


def _ignore_index(task: TaskStats) -> int | None:
    for runs in task.runs_by_variant.values():
        for run in runs:
            section = run.summary.get(keys.MULTICLASS_TASK)
            value = section.get("ignore_index") if isinstance(section, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
                return value
    return None


def _mean_std(values: list[float]) -> str:
    if not values:
        return MISSING
    if len(values) == 1:
        return fmt(values[0], "score")
    return f"{fmt(float(np.mean(values)), 'score')} ± {fmt(float(np.std(values, ddof=1)), 'score')}"


def _class_table(task: TaskStats, names: ClassNames, k: int) -> tuple[Table, dict]:
    """One row per class: per variant IoU and Dice, mean ± std (sample std) over its counted seeds, and in how
    many seeds the class was stuck (validation Dice never above 0.05)."""
    variants = sorted(task.runs_by_variant)
    header = ["class"]
    for v in variants:
        header += [f"{md(v)} IoU", f"{md(v)} Dice", f"{md(v)} stuck in"]
    rows, numbers = [], {}
    for label in range(k):
        row = [md(names.label(label))]
        for v in variants:
            runs = [r for r in task.runs_by_variant[v] if counted(r)]
            iou = [
                float(x)
                for r in runs
                if isinstance(
                    x := run_values(r, "test").get(keys.class_key("test", "iou", label)), (int, float)
                )
            ]
            dice = [
                float(x)
                for r in runs
                if isinstance(
                    x := run_values(r, "test").get(keys.class_key("test", "dice", label)), (int, float)
                )
            ]
            stuck = sum(label in ((r.summary.get("health") or {}).get("stuck_classes") or []) for r in runs)
            numbers.setdefault(v, {})[names.label(label)] = {
                "iou": iou,
                "dice": dice,
                "stuck_runs": stuck,
                "runs": len(runs),
            }
            row += [_mean_std(iou), _mean_std(dice), f"{stuck} of {len(runs)}"]
        rows.append(row)
    row = ["**mean over classes (mIoU / mean Dice)**"]
    for v in variants:
        runs = [r for r in task.runs_by_variant[v] if counted(r)]
        miou = [
            float(x) for r in runs if isinstance(x := run_values(r, "test").get(keys.TEST_MIOU), (int, float))
        ]
        dice = [
            float(x) for r in runs if isinstance(x := run_values(r, "test").get(keys.TEST_DICE), (int, float))
        ]
        numbers.setdefault(v, {})["mean over classes"] = {"miou": miou, "dice": dice}
        row += [_mean_std(miou), _mean_std(dice), ""]
    rows.append(row)
    return Table(header, rows, f"per-class:{task.spec.task}"), numbers


def _summed_confusion(runs, k: int) -> np.ndarray | None:
    total = None
    for run in runs:
        if not counted(run):
            continue
        matrix = run.read(CONFUSION, run.folder.read_confusion)
        if matrix is None or matrix.shape != (k, k) or (matrix < 0).any():
            continue
        total = matrix.astype(np.int64) if total is None else total + matrix
    return total


def _worst_cases(runs, k: int) -> list[list[str]]:
    """The cases with the lowest mIoU (mean over the variant's seeds), with the file each came from."""
    per_case: dict[int, list[float]] = {}
    sources: dict[int, str] = {}
    for run in runs:
        if not counted(run):
            continue
        for row in run.read(TEST_CASES, run.folder.read_test_cases) or []:
            case, miou = row.get(keys.CASE), row.get(keys.CASE_MIOU)
            if (
                isinstance(case, (int, float))
                and float(case).is_integer()
                and isinstance(miou, float)
                and np.isfinite(miou)
            ):
                case = int(case)
                per_case.setdefault(case, []).append(miou)
                if row.get(keys.CASE_SOURCE) not in (None, ""):
                    sources[case] = str(row[keys.CASE_SOURCE])[:200]
    ranked = sorted(per_case, key=lambda c: (float(np.mean(per_case[c])), c))[:WORST_SHOWN]
    return [
        [
            str(c),
            md(sources.get(c, MISSING)),
            fmt(float(np.mean(per_case[c])), "score"),
            str(len(per_case[c])),
        ]
        for c in ranked
    ]


def multiclass_detail(task: TaskStats, names: ClassNames) -> tuple[list, dict]:
    k = _num_classes(task)
    if k < 2:
        return [Paragraph("No run recorded per-class scores.")], {}
    ignore = _ignore_index(task)
    class_names = tuple(names.name(i) or f"class {i}" for i in range(k))
    colours = palette_of(task, k)
    table, per_class = _class_table(task, names, k)
    ignored = f"; mask value {ignore} is ignored (no loss, no score)" if ignore is not None else ""
    blocks = [
        Paragraph(
            f"Per class on test (class names from {names.source}{ignored}): IoU and Dice of each class over "
            "all test pixels of a run (its summed confusion matrix, the benchmark's way), mean ± sample std "
            "over the variant's counted seeds; mIoU is the mean over the classes present in the test truth "
            "or predictions. *Stuck in*: the seeds in which the class's validation Dice never rose above "
            "0.05 (the class was never learned)."
        ),
        table,
    ]
    numbers: dict = {
        "num_classes": k,
        "ignore_index": ignore,
        "class_names": list(class_names),
        "class_names_from": names.source,
        "per_class": per_class,
        "confusion": {},
        "worst_cases": {},
    }
    for variant, runs in sorted(task.runs_by_variant.items()):
        matrix = _summed_confusion(runs, k)
        if matrix is not None:
            numbers["confusion"][variant] = matrix.tolist()
            blocks.append(
                Figure(
                    f"{task.spec.task}_confusion_{slug(variant)}.png",
                    partial(
                        figures.class_confusion,
                        matrix,
                        class_names,
                        f"{variant}: test pixels, summed over seeds",
                    ),
                    f"{md(variant)}: where each class's test pixels went (rows: true class, normalised to 1; "
                    "summed over its counted seeds; ignored pixels left out).",
                )
            )
        worst = _worst_cases(runs, k)
        if worst:
            numbers["worst_cases"][variant] = [row[0] for row in worst]
            blocks += [
                Paragraph(
                    f"{md(variant)}: the {len(worst)} test cases with the lowest mIoU (mean over "
                    "seeds), by name, to find them among the data's files."
                ),
                Table(["case", "source", "mIoU", "seeds"], worst, f"worst-cases:{slug(variant)}"),
            ]
    if not numbers["confusion"]:
        blocks.append(Paragraph(f"No run saved {CONFUSION} (the test pixels' class-confusion matrix)."))
    shown = 0
    for variant, runs in sorted(task.runs_by_variant.items()):
        run = next((r for r in runs if counted(r) and r.folder.has(QUALITATIVE)), None)
        q = run.read(QUALITATIVE, run.folder.read_qualitative) if run else None
        if q is None or "fixed_image" not in q:
            continue
        shown += 1
        kept = [n for n in QUALITATIVE_CASES if f"{n}_image" in q]
        blocks.append(
            Figure(
                f"{task.spec.task}_cases_{slug(variant)}.png",
                partial(figures.class_cases, variant, q, class_names, colours, ignore),
                f"{md(variant)}: {', '.join(kept)} test cases (ranked by the image's mIoU) of its first "
                "counted seed: input, ground truth and prediction in the data's palette (legend below; "
                "ignored pixels black), and the errors (red: wrong class; ignored pixels not scored).",
            )
        )
    if not shown:
        blocks.append(Paragraph(f"No run saved {QUALITATIVE} (test predictions)."))
    return blocks, numbers


class MulticlassSegmentationReport(TaskReport):
    """K-class segmentation on the page: mIoU aggregated over seeds, per-class tables and figures."""

    cases_key = keys.TEST_CASES

    def detail(self, task, names):
        return multiclass_detail(task, names)

    def measure_note(self, task, measure):
        return f"**{md(measure.label)}** (mean IoU over the classes present; ignored pixels not counted)"


REPORT = MulticlassSegmentationReport()
