"""Which variant each variant is compared with: like with like.

A study may evaluate one trained model on several test sets (the test slices of a stack, then the same slices
darker or brighter) and with test-time options (flips). A Δ between "r2 on the bright slices" and "r0 on the
plain slices" mixes a model change with a test change, so each variant is compared with the baseline's model
**evaluated on the same data**:

- a variant's *evaluation set* is the data its test score comes from (``summary.json``'s ``data``, with folder
  names reduced to their last part so that one data set copied to two machines is one set), and its *test-time
  options* are ``model.tta``;
- a variant's *model* is the variant of the training run whose checkpoint it evaluated (an evaluation-only
  record, ``train=false``), else its own name;
- a variant of another model is compared with the baseline model's variant on the same set with the same
  test-time options; a variant of the baseline model with test-time options is compared with the baseline
  model on the same set without them (the options' own effect); the baseline model on a set other than the
  baseline's is that set's reference (no Δ). Where no such variant exists there is no Δ.

When every variant is scored on one set with one option (most studies) every variant is compared with the
baseline, as before. Training budgets are not paired (a preset's budget is part of its recipe), but a Δ
between runs of different budgets says so (``budget_note``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from visionlab.report.collect import Run

_FOLDER = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^/\\\s()|:,;]+)+[/\\]?")


def _last_part(match: re.Match) -> str:
    return match.group(0).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]


def data_identity(run: Run) -> str:
    """The run's test data as a machine-independent text: its ``data`` line with every path reduced to its
    name."""
    text = str(run.summary.get("data") or "")
    return _FOLDER.sub(_last_part, text)


def test_options(run: Run) -> str:
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    value = model.get("tta")
    return "none" if value in (None, False, "none", "") else str(value)


def budget(run: Run) -> str | None:
    """``5 epochs`` / ``3000 steps`` from the run's trainer config; None when unknown."""
    trainer = run.config.get("trainer") if isinstance(run.config.get("trainer"), dict) else {}
    steps, epochs = trainer.get("max_steps"), trainer.get("max_epochs")
    if isinstance(steps, int) and steps > 0:
        return f"{steps} steps"
    if isinstance(epochs, int) and epochs > 0:
        return f"{epochs} epochs"
    return None


@dataclass(frozen=True)
class Pairing:
    """For every variant: the variant its Δ is taken against (None: no Δ), and a note when budgets differ."""

    compared_with: dict[str, str | None]
    budget_note: dict[str, str]
    references: frozenset[
        str
    ]  # variants of the baseline model that are the reference of their evaluation set

    @property
    def uniform(self) -> bool:
        """True when the pairing is the classic one: every non-baseline variant against one baseline."""
        return len({v for v in self.compared_with.values() if v is not None}) <= 1 and not self.references


def _common(values: list[str]) -> str | None:
    return values[0] if values and len(set(values)) == 1 else None


def _tail(path: str, parts: int = 2) -> tuple[str, ...]:
    """The last ``parts`` folder names of a path: a run folder is known by its sweep and job folder names,
    which stay the same when records are copied (``--copy-records``) or a checkpoint path was given relative
    to the run."""
    return tuple(path.replace("\\", "/").rstrip("/").split("/")[-parts:])


def _models(runs_by_variant: dict[str, list[Run]]) -> dict[str, str]:
    """Variant → the variant of the model it tested (its own name unless all its runs evaluated another's)."""
    owner: dict[tuple[str, ...], str] = {}  # training run folder (last two names) → its variant
    for variant, runs in runs_by_variant.items():
        for run in runs:
            folder = run.summary.get("output_dir")
            if isinstance(folder, str) and folder and not run.evaluation_only:
                owner[_tail(folder)] = variant
    models = {}
    for variant, runs in runs_by_variant.items():
        found = []
        for run in runs:
            ckpt = run.summary.get("evaluated_checkpoint")
            trained_by = None
            if run.evaluation_only and isinstance(ckpt, str) and ckpt.count("/") >= 3:
                trained_by = owner.get(_tail(ckpt.rsplit("/", 2)[0]))  # <sweep>/<run>/checkpoints/<file>
            found.append(trained_by or variant)
        models[variant] = _common(found) or variant
    return models


def pair(runs_by_variant: dict[str, list[Run]], baseline: str | None) -> Pairing:
    variants = sorted(runs_by_variant)
    models = _models(runs_by_variant)
    data = {v: _common([data_identity(r) for r in runs_by_variant[v]]) for v in variants}
    options = {v: _common([test_options(r) for r in runs_by_variant[v]]) for v in variants}
    budgets = {v: _common([b for r in runs_by_variant[v] if (b := budget(r))]) for v in variants}
    compared: dict[str, str | None] = {}
    references = set()
    for v in variants:
        if baseline is None or v == baseline:
            compared[v] = None
            continue
        same_set = [
            w
            for w in variants
            if w != v
            and models[w] == models.get(baseline, baseline)
            and (data[w] == data[v] or data[w] is None or data[v] is None)
        ]
        if models[v] == models.get(baseline, baseline):
            plain = [w for w in same_set if options[w] == "none"]
            if options[v] == "none" or not plain:
                compared[v] = None
                references.add(v)
            else:
                compared[v] = baseline if baseline in plain else plain[0]
        else:
            matching = [w for w in same_set if options[w] == options[v]]
            compared[v] = baseline if baseline in matching else (matching[0] if matching else None)
    notes = {
        v: f"{budgets[v]} vs {budgets[w]}"
        for v, w in compared.items()
        if w is not None and budgets[v] and budgets[w] and budgets[v] != budgets[w]
    }
    return Pairing(compared, notes, frozenset(references))
