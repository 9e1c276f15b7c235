"""Paths on a page are relative to a named root, never the absolute paths of the machine that made the runs.

A report is read on other machines (a committed study, a colleague's sweep): ``/root/study/logs/...`` or
``/work/shared/data/<set>`` says nothing there and leaks the author's folder layout. Every absolute path a
record carries into the page (the data line, the command line's overrides, the run and checkpoint folders) is
shown relative to a named root instead:

- ``$LOGS/<rest>`` for a path with a ``logs`` folder in it (the project's log root: ``paths.log_dir``);
- ``$DATA/<rest>`` for a path with a ``data`` folder in it (what follows that folder), and for any other
  absolute path its last part (``/work/constructed/thin_noisy.npz`` → ``$DATA/thin_noisy.npz``).

Relative paths are left as they are. Only the page's copy changes; the records keep what the run wrote.
"""

from __future__ import annotations

import re

# an absolute POSIX path: from a "/" that starts the text or follows a separator (not a word, an interpolation
# such as ``${paths.output_dir}/checkpoints`` or a bracket: those continue a relative path), up to a character
# that ends it
_ABSOLUTE = re.compile(r"(?<![\w.$~}\])-])/(?:[^\s/()'\"`,;:|=<>]+/)*[^\s/()'\"`,;:|=<>]*")
SUMMARY_PATHS = ("data", "output_dir", "evaluated_checkpoint", "resumed_from")


def _named(match: re.Match) -> str:
    parts = [p for p in match.group(0).split("/") if p]
    if not parts:
        return match.group(0)
    if parts[-1] == "logs":
        return "$LOGS"
    for root, name in (("logs", "$LOGS"), ("data", "$DATA")):
        if root in parts[:-1]:
            where = len(parts) - 1 - parts[::-1].index(root)  # the last such folder
            return "/".join([name, *parts[where + 1 :]])
    return f"$DATA/{parts[-1]}"


def portable(text: str) -> str:
    """``text`` with every absolute path shown relative to its named root."""
    return _ABSOLUTE.sub(_named, text) if "/" in text else text


def _config_paths(node, depth: int = 0):
    """The config with every string value that is an absolute path made portable (a bounded config: the report
    checks its size before it gets here; the depth limit only guards the recursion)."""
    if depth > 64:
        return node
    if isinstance(node, dict):
        return {k: _config_paths(v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_config_paths(v, depth + 1) for v in node]
    return portable(node) if isinstance(node, str) and node.startswith("/") else node


def make_portable(run) -> None:
    """Rewrite the page-facing copies of a run's paths (summary fields, command-line overrides, config values)
    in place."""
    for key in SUMMARY_PATHS:
        if isinstance(run.summary.get(key), str):
            run.summary[key] = portable(run.summary[key])
    run.overrides = [portable(o) if isinstance(o, str) else o for o in run.overrides]
    run.config = _config_paths(run.config)
