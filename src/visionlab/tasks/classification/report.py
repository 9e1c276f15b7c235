"""Classification detail: per variant the confusion matrix and per-class accuracy (test, or validation at the
best epoch when there is no test split), the worst classes named, and a grid of misclassified images sampled
across classes and seeds."""

from __future__ import annotations

from functools import partial

from visionlab.record.folder import TEST
from visionlab.record.layout import MISCLASSIFIED, VAL_MISCLASSIFIED
from visionlab.report.analysis.classes import ClassNames
from visionlab.report.analysis.stats import TaskStats, counted, summed_confusion, weakest_classes
from visionlab.report.render import figures
from visionlab.report.render.document import Figure, Paragraph, Table
from visionlab.report.render.escape import md
from visionlab.report.render.format import fmt
from visionlab.report.render.slugs import slug
from visionlab.tasks.registry import TaskReport

GRID = 24  # misclassified images shown per variant


def _split_words(split: str) -> str:
    return "test" if split == TEST else "validation (best epoch)"


def classification_detail(task: TaskStats, names: ClassNames) -> tuple[list, dict]:
    blocks, numbers = [], {}
    if names.names:
        blocks.append(Paragraph(f"Class names: from {names.source}."))
    for variant, runs in sorted(task.runs_by_variant.items()):
        found = summed_confusion(runs)
        if found is None:
            blocks.append(
                Paragraph(f"{md(variant)}: no confusion matrix recorded (neither test nor validation).")
            )
            continue
        matrix, split, n = found
        where = _split_words(split)
        title = f"{variant}: {where} confusion matrix, summed over {n} seed{'s' * (n != 1)}"
        worst = weakest_classes(matrix)
        named = ", ".join(f"{md(names.label(c))} ({fmt(acc, 'percent')})" for c, _, acc in worst)
        per_seed = [support // n if support % n == 0 else f"{support / n:.1f}" for _, support, _ in worst]
        blocks += [
            Figure(
                f"confusion_{slug(variant, task.runs_by_variant)}.png",
                partial(figures.confusion, matrix, title),
                md(title),
            ),
            Paragraph(
                f"{md(variant)}: worst classes on {where}: {named}. Accuracy over the {n} seeds' "
                f"predictions together; each seed scores the same images, so the images per class "
                f"are counted once (the matrix sums {n} × that)."
            ),
            Table(
                ["class", "name", f"{where} images (each seed)", "accuracy (all seeds)"],
                [
                    [str(c), md(names.name(c) or "—"), str(k), fmt(acc, "percent")]
                    for (c, _, acc), k in zip(worst, per_seed)
                ],
                f"worst-classes:{variant}",
            ),
        ]
        support = matrix.sum(axis=1)
        numbers[variant] = {
            "split": split,
            "seeds_summed": n,
            "confusion": matrix.tolist(),
            "per_class_accuracy": [
                float(matrix[c, c] / support[c]) if support[c] else None for c in range(len(matrix))
            ],
            "worst_classes": [
                {"class": c, "name": names.name(c), "support": s, "images_per_seed": s / n, "accuracy": a}
                for c, s, a in worst
            ],
        }
        blocks += _mistakes(variant, runs, split, names, slug(variant, task.runs_by_variant))
    return blocks, numbers


def _mistakes(variant: str, runs, split: str, names: ClassNames, name_part: str) -> list:
    name = MISCLASSIFIED if split == TEST else VAL_MISCLASSIFIED
    records = []
    for run in runs:
        if counted(run) and run.folder.has(name):
            wrong = run.read(name, lambda run=run: run.folder.read_misclassified(split))
            if (
                wrong
                and len(wrong.get("images", []))
                and len(wrong.get("true", [])) == len(wrong["images"]) == len(wrong.get("pred", []))
            ):
                records.append((run.seed, wrong))
    if not records:
        return [Paragraph(f"{md(variant)}: no misclassified images recorded.")]
    picked = figures.sample_mistakes(records, GRID)
    by_seed = dict(records)
    images = [by_seed[s]["images"][i] for s, i in picked]
    true = [int(by_seed[s]["true"][i]) for s, i in picked]
    pred = [int(by_seed[s]["pred"][i]) for s, i in picked]
    captions = [f"{t} → {p} (s{s})" for (s, _), t, p in zip(picked, true, pred)]
    kept = sum(len(w["images"]) for _, w in records)
    classes = len(set(true))
    caption = (
        f"{variant}: {len(picked)} misclassified {_split_words(split)} images, true → predicted class "
        f"(seed), sampled across {classes} true classes and {len(records)} seeds from the {kept} the records "
        "keep. A run keeps its first mistakes in data order and no track ids, so images of one class may "
        "still be frames of one track."
    )
    return [
        Figure(
            f"misclassified_{name_part}.png",
            partial(
                figures.misclassified,
                images,
                true,
                pred,
                captions,
                f"{variant}: misclassified, true → predicted",
            ),
            md(caption),
        )
    ]


class ClassificationReport(TaskReport):
    """Classification on the page: accuracy aggregated over seeds, formatted as percent, and the confusion
    matrix, worst classes and misclassified images as detail."""

    def detail(self, task, names):
        return classification_detail(task, names)

    def effect_kind(self, task):
        return task.measures[0].kind

    def curve_metric_label(self, task):
        return task.measures[0].label

    def groups_in_older_records(self, run):
        # the image folder groups files by a name pattern; the other classification sources (GTSRB, the
        # synthetic signs) group the frames of one track
        data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
        return "group" if str(data.get("_target_", "")).endswith("ImageFolderDataModule") else "track"

    def validation_name_without_facts(self):
        # records from before data_facts: the classification data sets then (GTSRB, the synthetic signs) were
        # split by whole tracks
        return "validation (track-held-out)"


REPORT = ClassificationReport()
