"""What the classes are called: ``data.class_names`` in a run's resolved config (index = label), else a name
the
report knows for the data set the config reads, said to be the report's, else none (the page then writes
"class 7").

Segmentation has two labels: 0 (background) and 1 (foreground; the class ``test/f1`` scores). On ISBI 2012,
label 0
is the membranes and label 1 the cell interiors.
"""

from __future__ import annotations

from dataclasses import dataclass

from visionlab.report.collect import Run

MAX_CLASSES = 10_000  # a longer class_names list in a record is ignored

GTSRB = (
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 t",
    "Right-of-way at the next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 t prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 t",
)
ISBI = ("membrane", "cell interior")
SEGMENTATION_DEFAULT = ("background", "foreground")


@dataclass(frozen=True)
class ClassNames:
    names: tuple[str, ...]
    source: str  # where the names come from, as the page says it

    def name(self, label: int) -> str | None:
        return self.names[label] if 0 <= label < len(self.names) else None

    def label(self, label: int) -> str:
        """``27 Pedestrians``, or ``class 27`` when the class has no name."""
        name = self.name(label)
        return f"{label} {name}" if name else f"class {label}"


NONE = ClassNames((), "")


def _from_config(run: Run) -> ClassNames | None:
    data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    names = data.get("class_names")
    if (
        isinstance(names, list)
        and 0 < len(names) <= MAX_CLASSES
        and all(isinstance(n, (str, int)) and len(str(n)) <= 200 for n in names)
    ):
        return ClassNames(tuple(str(n) for n in names), "the runs' config (`data.class_names`)")
    return None


def _known(run: Run) -> ClassNames | None:
    data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    target = str(data.get("_target_") or "")
    where = f"{data.get('data_dir') or ''} {run.summary.get('data') or ''}".lower()
    if target.endswith("GTSRBDataModule") or "gtsrb" in where and run.task == "classification":
        return ClassNames(
            GTSRB, "the report's list of GTSRB's 43 sign names (the runs' config has no `data.class_names`)"
        )
    if "isbi" in where and run.task == "segmentation":
        return ClassNames(
            ISBI,
            "the report's names for ISBI 2012 labels: 0 membrane, 1 cell interior (the runs' "
            "config has no `data.class_names`)",
        )
    return None


def class_names(runs: list[Run]) -> ClassNames:
    """The names of the first run that has any (config first, then the report's list for a known data set)."""
    for finder in (_from_config, _known):
        for run in runs:
            found = finder(run)
            if found is not None:
                return found
    if runs and all(r.task == "segmentation" for r in runs):
        return ClassNames(
            SEGMENTATION_DEFAULT,
            "generic names: label 0 background, label 1 foreground (no "
            "`data.class_names` in the runs' config)",
        )
    return NONE
