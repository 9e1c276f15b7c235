"""What a logger plug-in adds to a run beyond Lightning's ``Logger`` API, so the run's code names no tracker.

Loggers are config (``conf/logger/*.yaml``): csv and tensorboard are Lightning's loggers and nothing more. A
logger that is also a tracker of runs (W&B) carries a ``RunTracker`` as its ``visionlab_tracker`` attribute:
the run starts it once its folder exists, adds its section to summary.json, and finishes it after the record
is written (bounded in time: the record never depends on the tracker).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class RunTracker(Protocol):
    section: str  # its key in summary.json
    title: str  # its name in messages
    shows_media: bool  # whether the model's media callback (image grids) should log to it

    def start(self, folder, writes_record: bool) -> None:
        """Start the tracker's run (once the run folder exists); ``writes_record``: this process keeps the
        run's record (global rank 0)."""

    def record_section(self) -> dict:
        """Its section of summary.json, from local state only (written before the tracker is asked
        anything)."""

    def finish(self, summary: dict) -> str | None:
        """Publish the summary and end the tracker's run, bounded in time; what went wrong, or None."""

    def sync_hint(self, section: dict) -> str:
        """Text that says how to upload what the tracker kept locally ("" when nothing is left to do)."""


def trackers(loggers: list) -> list[RunTracker]:
    """The run trackers among the run's loggers."""
    return [
        tracker for logger in loggers if (tracker := getattr(logger, "visionlab_tracker", None)) is not None
    ]
