"""What a run prints: our lines, not library noise, and the result at the end."""

from __future__ import annotations

import logging
import warnings

from visionlab.record.layout import Status

# (logger or warning, text it contains) that say nothing about this run
_NOISY_LOG_LINES = (
    ("pytorch_lightning.utilities.rank_zero", "litlogger"),  # "💡 Tip: … try installing litlogger"
    ("lightning_fabric.utilities.rank_zero", "litlogger"),
)
_NOISY_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning's pytree shim on newer torch
    r"Precision .* is not supported by the model summary.*",  # bf16: the size estimate falls back to 32 bits
)


class _DropContaining(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_library_noise() -> None:
    """Drop adverts and warnings that libraries print on every run (idempotent)."""
    for name, text in _NOISY_LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropContaining) and f.text == text for f in logger.filters):
            logger.addFilter(_DropContaining(text))
    for message in _NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def print_result(summary: dict) -> None:
    """Status, run folder, best/final/test metrics, errors and the W&B sync command."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    status = summary["status"]
    colour = "green" if status == Status.COMPLETED else "red"
    # every value is escaped: "[...]" in a name, path or error message is text, not rich markup
    console.print(
        f"[bold {colour}]{escape(str(status))}[/]: {escape(str(summary['experiment']))} "
        f"(seed {escape(str(summary['seed']))})"
    )
    console.print(f"run folder: {escape(str(summary['output_dir']))}")
    for section in ("best", "final", "test"):
        metrics = summary.get(section)
        if metrics:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            console.print(f"{section}: {escape(shown)}")
    if summary.get("test_split") == "unavailable":
        console.print("test: no test split available (see summary.json)")
    if summary.get("error"):
        console.print(f"[red]error:[/] {escape(str(summary['error']))}")
    wandb_info = summary.get("wandb") or {}
    if wandb_info.get("sync_command"):
        console.print(f"upload to W&B later with: {escape(str(wandb_info['sync_command']))}")
