"""What the classes are called, from the data, never from the report: ``data.class_names`` in a run's resolved
config (index = label), else ``data_facts.class_names`` in its summary.json (what the datamodule served),
else, for records written before either existed, the ``class_names`` of the shipped data config
(``conf/data/<name>.yaml``) the run's data config came from, else the task's own generic names (a task's
``TaskReport.default_names``), else none (the page then writes "class 7").

The report core knows no data set and no task: a new data set names its classes in its data config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from visionlab.report.collect import Run

MAX_CLASSES = 10_000  # a longer class_names list in a record is ignored


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


def _usable(names) -> bool:
    return (
        isinstance(names, list)
        and 0 < len(names) <= MAX_CLASSES
        and all(isinstance(n, (str, int)) and len(str(n)) <= 200 for n in names)
    )


def _data(run: Run) -> dict:
    return run.config.get("data") if isinstance(run.config.get("data"), dict) else {}


def _from_config(run: Run) -> ClassNames | None:
    names = _data(run).get("class_names")
    if _usable(names):
        return ClassNames(tuple(str(n) for n in names), "the runs' config (`data.class_names`)")
    return None


def _from_facts(run: Run) -> ClassNames | None:
    """The names the datamodule recorded, unless they are only the class ids (data without names)."""
    facts = run.summary.get("data_facts")
    names = facts.get("class_names") if isinstance(facts, dict) else None
    if _usable(names) and [str(n) for n in names] != [str(i) for i in range(len(names))]:
        return ClassNames(
            tuple(str(n) for n in names), "the runs' data facts (summary.json `data_facts.class_names`)"
        )
    return None


@lru_cache(maxsize=1)
def _shipped_data_configs() -> tuple[tuple[str, dict], ...]:
    """(file stem, plain top-level values) of every shipped ``conf/data/*.yaml``, read as data (no
    interpolation is resolved: a computed ``class_names`` is not a list and is not used)."""
    import yaml

    from visionlab.config.location import config_dir

    try:
        folder = config_dir() / "data"
    except RuntimeError:
        return ()
    found = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            node = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(node, dict):
            found.append((path.stem, node))
    return tuple(found)


def _from_shipped_config(run: Run) -> ClassNames | None:
    """An older record (no ``data.class_names``, no ``data_facts``): the shipped data config of the same
    name, else the only one with the same datamodule ``_target_``, else the one whose file name the run's
    data folder or data description names (among those of its ``_target_`` where the config has one)."""
    data = _data(run)
    target = str(data.get("_target_") or "")
    shipped = _shipped_data_configs()
    same_target = [(stem, node) for stem, node in shipped if not target or node.get("_target_") == target]
    by_name = [
        (stem, node)
        for stem, node in same_target
        if target and data.get("name") and node.get("name") == data["name"]
    ]
    where = f"{data.get('data_dir') or ''} {run.summary.get('data') or ''}".lower()
    by_folder = [(stem, node) for stem, node in same_target if stem.lower() in where]
    for candidates in (by_name, same_target if target and len(same_target) == 1 else [], by_folder):
        if len(candidates) == 1 and _usable(candidates[0][1].get("class_names")):
            stem, node = candidates[0]
            return ClassNames(
                tuple(str(n) for n in node["class_names"]),
                f"the data config `conf/data/{stem}.yaml` (the runs' config has no `data.class_names`)",
            )
    return None


def class_names(runs: list[Run]) -> ClassNames:
    """The names of the first run that has any (config, then data facts, then the shipped data config), else
    the task's generic names."""
    for finder in (_from_config, _from_facts, _from_shipped_config):
        for run in runs:
            found = finder(run)
            if found is not None:
                return found
    tasks = {r.task for r in runs}
    if len(tasks) == 1:
        from visionlab.tasks.registry import report_of

        default = report_of(tasks.pop()).default_names()
        if default is not None:
            return default
    return NONE
