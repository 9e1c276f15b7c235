"""Like-for-like tables for the study README, from run records alone: each recipe against another on the SAME
evaluation set (the plain ISBI test slices, or the same slices under one shift), never across sets.

    python experiments/unet_recipe/like_for_like.py experiments/unet_recipe/runs r2_intensity:r0_course r2_intensity:r1_steps
    python experiments/unet_recipe/like_for_like.py experiments/unet_recipe/runs_shift r2_intensity:r0_course

A record's evaluation set is its tag: the experiment name after the recipe (``r2_intensity_dark_far`` → ``dark_far``;
the training run itself → ``plain``). Each row: membrane F1 (``test/f1_bg``) of both recipes over their seeds, the
difference of means with Welch's 95 % interval and two-sided p (seeds are independent training runs, so the
comparison is unpaired, as the report's). A last table counts, per record, which test case had the lowest
cell-interior F1 (``test_cases.csv``'s ``f1``). Standard library + NumPy/SciPy only: no visionlab import, so the
script does not depend on where the package keeps its modules."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

RECIPES = ("r0_course", "r1_steps", "r2_intensity")
KEY = "test/f1_bg"
SET_ORDER = (
    "plain",
    "tta",
    "dark",
    "dark_tta",
    "bright",
    "bright_tta",
    "dark_far",
    "dark_far_tta",
    "bright_far",
    "bright_far_tta",
    "noise",
    "noise_tta",
    "blur",
    "blur_tta",
    "macro",
    "macro_tta",
)


def load(root: Path) -> tuple[dict, Counter]:
    """{(recipe, set): {seed: membrane F1}} over the ISBI records under ``root``, and the worst-case counter."""
    scores: dict = defaultdict(dict)
    worst: Counter = Counter()
    for path in sorted(root.rglob("summary.json")):
        if "unet_screen_isbi" not in path.parts:
            continue
        summary = json.loads(path.read_text())
        recipe = next((r for r in RECIPES if summary.get("experiment", "").startswith(r)), None)
        if recipe is None or summary.get("status") != "completed" or not summary.get("test"):
            continue
        tag = summary["experiment"].removeprefix(recipe).lstrip("_") or "plain"
        scores[(recipe, tag)][summary["seed"]] = summary["test"][KEY]
        cases = path.with_name("test_cases.csv")
        if cases.is_file():
            rows = list(csv.DictReader(cases.open()))
            worst[min(rows, key=lambda r: float(r["f1"]))["case"]] += 1
    return scores, worst


def welch(a: list[float], b: list[float]) -> tuple[float, float, float, float]:
    """mean(a) − mean(b), its Welch 95 % interval, and the two-sided Welch p."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    dof = se**4 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.975, dof)) * se
    delta = float(x.mean() - y.mean())
    p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    return delta, delta - half, delta + half, p


def cell(runs: dict) -> str:
    values = [runs[s] for s in sorted(runs)]
    return f"{np.mean(values):.3f} ({' / '.join(f'{v:.3f}' for v in values)})"


def main(root: str, *pairs: str) -> None:
    scores, worst = load(Path(root))
    sets = [s for s in SET_ORDER if any((r, s) in scores for r in RECIPES)]
    for pair in pairs:
        variant, baseline = pair.split(":")
        print(f"\n{variant} against {baseline}, membrane F1 ({KEY}) on the same evaluation set:\n")
        print(f"| evaluation set | {baseline} | {variant} | Δ [95 % CI] | p (Welch) |")
        print("|---|---|---|---|---|")
        for name in sets:
            a, b = scores.get((variant, name), {}), scores.get((baseline, name), {})
            if not a or not b:
                continue
            if len(a) > 1 and len(b) > 1:
                delta, low, high, p = welch(list(a.values()), list(b.values()))
                diff = f"{delta:+.3f} [{low:+.3f}, {high:+.3f}]"
                shown = "< 0.001" if p < 0.001 else f"{p:.3f}"
            else:
                diff, shown = f"{np.mean(list(a.values())) - np.mean(list(b.values())):+.3f}", "n/a"
            print(f"| {name} | {cell(b)} | {cell(a)} | {diff} | {shown} |")
    total = sum(worst.values())
    shown = ", ".join(f"case {case}: {n}" for case, n in sorted(worst.items()))
    print(f"\nLowest cell-interior F1 (test_cases.csv) per record, {total} records: {shown}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:])
