"""Classification detail: per variant the confusion matrix and per-class accuracy (test, or validation at the best
epoch when there is no test split), the worst classes named, and a grid of misclassified images."""

from __future__ import annotations

from visionlab.report import figures
from visionlab.report.escape import md
from visionlab.report.format import fmt
from visionlab.report.render import Figure, Paragraph, Table
from visionlab.report.stats import TaskStats, counted, summed_confusion, weakest_classes
from visionlab.run_record.folder import TEST
from visionlab.run_record.layout import MISCLASSIFIED, VAL_MISCLASSIFIED


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))


def _split_words(split: str) -> str:
    return "test" if split == TEST else "validation (best epoch)"


def classification_detail(task: TaskStats) -> tuple[list, dict]:
    blocks, numbers = [], {}
    for variant, runs in sorted(task.runs_by_variant.items()):
        found = summed_confusion(runs)
        if found is None:
            blocks.append(Paragraph(f"{md(variant)}: no confusion matrix recorded (neither test nor validation)."))
            continue
        matrix, split, n = found
        where = _split_words(split)
        title = f"{variant}: {where} confusion matrix, summed over {n} seed{'s' * (n != 1)}"
        worst = weakest_classes(matrix)
        named = ", ".join(f"class {c} ({fmt(acc, 'percent')})" for c, _, acc in worst)
        blocks += [Figure(f"confusion_{slug(variant)}.png", figures.confusion(matrix, title), md(title)),
                   Paragraph(f"{md(variant)}: worst classes on {where}: {named}."),
                   Table(["class", f"{where} images", "accuracy"],
                         [[str(c), str(support), fmt(acc, "percent")] for c, support, acc in worst])]
        support = matrix.sum(axis=1)
        numbers[variant] = {"split": split, "seeds_summed": n, "confusion": matrix.tolist(),
                            "per_class_accuracy": [float(matrix[c, c] / support[c]) if support[c] else None
                                                   for c in range(len(matrix))],
                            "worst_classes": [{"class": c, "support": s, "accuracy": a} for c, s, a in worst]}
        blocks += _mistakes(variant, runs, split)
    return blocks, numbers


def _mistakes(variant: str, runs, split: str) -> list:
    name = MISCLASSIFIED if split == TEST else VAL_MISCLASSIFIED
    run = next((r for r in runs if counted(r) and r.folder.has(name)), None)
    wrong = run.read(name, lambda: run.folder.read_misclassified(split)) if run else None
    if not wrong or not len(wrong.get("images", [])):
        return [Paragraph(f"{md(variant)}: no misclassified images recorded.")]
    caption = f"{variant} seed {run.seed}: misclassified {_split_words(split)} images, true → predicted class"
    return [Figure(f"misclassified_{slug(variant)}.png",
                   figures.misclassified(wrong["images"], wrong["true"], wrong["pred"], caption), md(caption))]
