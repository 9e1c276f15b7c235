"""How the report writes numbers: accuracy in %, scores with 4 decimals, p-values, intervals and epochs.

One module so that the tables, the summary and report.json's page text print a number the same way everywhere.
"""

from __future__ import annotations

NA = "n/a"
MISSING = "—"
# the only level (on Holm-adjusted p) at which the report marks a difference (bold) or calls it significant
SIGNIFICANCE = 0.05


def fmt(value, kind: str) -> str:
    """Accuracy as % with 2 decimals, F1 with 4 decimals, counts as integers."""
    if value is None:
        return MISSING
    if kind == "percent":
        return f"{100 * value:.2f} %"
    if kind == "count":
        return f"{int(value)}"
    return f"{value:.4f}"


def fmt_delta(value, kind: str) -> str:
    if value is None:
        return NA
    return f"{100 * value:+.2f} pp" if kind == "percent" else f"{value:+.4f}"


def fmt_ci(interval, kind: str) -> str:
    """A 95 % interval of a difference, e.g. ``[-1.20, +3.40] pp``."""
    if interval is None:
        return NA
    low, high = interval
    if kind == "percent":
        return f"[{100 * low:+.2f}, {100 * high:+.2f}] pp"
    return f"[{low:+.4f}, {high:+.4f}]"


def fmt_mean_std(mean, std, kind: str) -> str:
    """``93.31 ± 0.12 %``; one run has no spread, so its value stands alone: ``93.31 % (1 run)``."""
    if mean is None:
        return MISSING
    if std is None:
        return f"{fmt(mean, kind)} (1 run)"
    if kind == "percent":
        return f"{100 * mean:.2f} ± {100 * std:.2f} %"
    return f"{mean:.4f} ± {std:.4f}"


def fmt_p(p) -> str:
    if p is None:
        return NA
    return "≤0.0001" if p < 1e-4 else f"{p:.4f}"  # "<" would be escaped as &lt; in the Markdown


def significant(p) -> bool:
    return p is not None and p < SIGNIFICANCE


def mark_significant(text: str, p) -> str:
    """Bold a difference only when its p-value is below SIGNIFICANCE."""
    return f"**{text}**" if significant(p) else text


def fmt_epoch(epoch) -> str:
    """Epochs as tables and figures number them: from 1 (the run record counts from 0)."""
    return MISSING if epoch is None else str(int(epoch) + 1)


def fmt_seconds(value) -> str:
    if value is None:
        return MISSING
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def fmt_rate(value) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def fmt_range(values, fmt_one) -> str:
    """``mean (min–max)`` of several values, or the one value; MISSING when there are none."""
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return MISSING
    if len(values) == 1:
        return fmt_one(values[0])
    mean = sum(values) / len(values)
    return f"{fmt_one(mean)} ({fmt_one(min(values))}–{fmt_one(max(values))})"
