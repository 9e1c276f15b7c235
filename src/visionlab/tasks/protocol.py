"""What the runner expects from a model and a datamodule, declared once (instead of probing with ``getattr``).

The runner checks both with ``isinstance`` right after building them, so a ``_target_`` that does not fit
fails with a ConfigError naming the missing members, before anything is trained."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from visionlab.data.facts import DataFacts
    from visionlab.record.folder import RunFolder


@runtime_checkable
class TaskDataModule(Protocol):
    """A LightningDataModule that can describe itself for the run record and the model's set-up checks.

    The shape members are meaningful after ``setup()``; before it they are None.
    """

    @property
    def description(self) -> str:
        """One line naming the data (source, splits made), recorded as ``summary.json``'s ``data``."""

    @property
    def test_available(self) -> bool:
        """Whether a labelled test split exists; without one the runner skips the test stage and says so."""

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the images the model receives."""

    @property
    def channels(self) -> int | None:
        """Channels of the images the model receives."""

    @property
    def facts(self) -> DataFacts | None:
        """What the data serves (classes and their names, channels, input size, split policy), recorded as
        ``summary.json``'s ``data_facts``; the model config follows the data config's copies of them."""


@runtime_checkable
class TaskModel(Protocol):
    """A LightningModule that says which task it solves and what it adds to the run record."""

    task: str  # key of the task's metric table (run_record.metric_keys.TASKS)

    def media_callback(self) -> pl.Callback | None:
        """The callback that logs this task's images and tables to W&B (None: nothing to log)."""

    def summary_section(self) -> dict:
        """Task-specific facts for ``summary.json[task]`` (not metrics: those are logged under their keys)."""

    def save_test_artifacts(self, folder: RunFolder) -> None:
        """Write the task's test-time files (per-case tables, confusion matrix, qualitative cases)."""

    def save_fit_artifacts(self, folder: RunFolder) -> None:
        """Write what training leaves besides metrics (e.g. the best epoch's validation confusion matrix)."""


def missing_members(obj: object, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` lacks, for an error message."""
    members = [name for name in dir(protocol) if not name.startswith("_")]
    members += list(getattr(protocol, "__annotations__", {}))
    return sorted({name for name in members if not hasattr(obj, name)})
