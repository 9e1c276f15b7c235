"""The study README's tables, from the run records alone (``runs/``, copied by visionlab-report --copy-records):

    python experiments/unet_recipe/tables.py experiments/unet_recipe/runs experiments/unet_recipe/runs_thin

(name the records folders: ``runs_shift/`` holds later ISBI runs of the same variant names, which must not mix in)

Each cell is the mean over seeds with the per-seed values in brackets. ISBI: membrane F1 (label 0, the minority
class; ``test/f1_bg``) on the plain test slices and on the same slices under the two exposures of make_sets.py;
thin_noisy: foreground F1 (label 1, the thin structures; ``test/f1``) and its worst case."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

RECIPES = {"r0_course": "r0 the recipe before (epochs of the data)", "r1_steps": "r1 + fixed 160-sample epochs",
           "r2_intensity": "r2 + intensity augmentation"}
MACRO = ("r2_intensity", "macro")  # r2's second checkpoint: best val/f1_macro


def load(*roots: Path) -> dict:
    """{(set, recipe, tag): {seed: test metrics}}; tag "" = the training run's own test."""
    out: dict = defaultdict(dict)
    for path in sorted(path for root in roots for path in root.rglob("summary.json")):
        summary = json.loads(path.read_text())
        dataset = next((p.removeprefix("unet_screen_") for p in path.parts if p.startswith("unet_screen_")), None)
        recipe = next((r for r in RECIPES if summary["experiment"].startswith(r)), None)
        if dataset is None or recipe is None or summary.get("status") != "completed" or not summary.get("test"):
            continue
        tag = summary["experiment"].removeprefix(recipe).lstrip("_")
        out[(dataset, recipe, tag)][summary["seed"]] = {**summary["test"], "steps": summary.get("steps")}
    return out


def cell(runs: dict, key: str) -> str:
    if not runs:
        return "—"
    values = [runs[seed][key] for seed in sorted(runs)]
    return f"{sum(values) / len(values):.3f} ({' / '.join(f'{v:.3f}' for v in values)})"


def main(*roots: str) -> None:
    data = load(*map(Path, roots))
    seeds = " / ".join(str(s) for s in sorted({seed for runs in data.values() for seed in runs}))
    print(f"ISBI 2012, membrane F1 (test/f1_bg), seeds {seeds}:\n")
    shifts = [("", "plain"), ("tta", "plain + TTA"), ("dark", "darker"), ("dark_tta", "darker + TTA"),
              ("bright", "brighter"), ("bright_tta", "brighter + TTA")]
    print("| recipe | steps | " + " | ".join(label for _, label in shifts) + " |")
    print("|---|---|" + "---|" * len(shifts))
    rows = [(r, "", RECIPES[r]) for r in RECIPES] + [(MACRO[0], "macro", "r2, checkpoint by val/f1_macro")]
    for recipe, prefix, label in rows:
        own = data.get(("isbi", recipe, ""), {})
        steps = "/".join(str(own[s]["steps"]) for s in sorted(own)) or "—"
        cells = [cell(data.get(("isbi", recipe, "_".join(p for p in (prefix, tag) if p)), {}), "test/f1_bg")
                 for tag, _ in shifts[:2]] if prefix else [cell(data.get(("isbi", recipe, tag), {}), "test/f1_bg")
                                                           for tag, _ in shifts]
        print(f"| {label} | {steps} | " + " | ".join(cells + ["—"] * (len(shifts) - len(cells))) + " |")
    print("\nthin_noisy, foreground F1 (test/f1: the thin structures) and the worst of 24 cases:\n")
    print("| recipe | steps | mean F1 | min F1 | mean F1 + TTA | min F1 + TTA |")
    print("|---|---|---|---|---|---|")
    for recipe, prefix, label in rows:
        own = data.get(("thin", recipe, prefix), {})
        tta = data.get(("thin", recipe, "_".join(p for p in (prefix, "tta") if p)), {})
        steps = "/".join(str(data.get(("thin", recipe, ""), {})[s]["steps"])
                         for s in sorted(data.get(("thin", recipe, ""), {}))) or "—"
        print(f"| {label} | {steps} | {cell(own, 'test/f1')} | {cell(own, 'test/f1_min')} | {cell(tta, 'test/f1')} "
              f"| {cell(tta, 'test/f1_min')} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:])
