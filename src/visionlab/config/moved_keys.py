"""Command lines of earlier versions keep working: the network's arguments moved from ``model.<key>`` to
``model.net.<key>`` when networks became swappable (``model/net``), and scripts, notes and papers still say
``model.features_start=32``. Such an override is forwarded to its new key, with one line on stderr that says
so.

A sweep config that names an old key (``hydra.sweeper.params``) is not rewritten: Hydra reports it, and
``cli_errors`` names the new key.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

# model.<key> of earlier versions that are the network's arguments now (model.net.<key>)
NETWORK_ARGUMENTS = ("activation", "batch_norm", "width", "features_start", "depth", "up_mode")
_MOVED = re.compile(
    r"^(?P<prefix>~|\+{1,2})?model\.(?P<key>" + "|".join(NETWORK_ARGUMENTS) + r")(?P<rest>(=.*)?)$", re.DOTALL
)


def forward(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``overrides`` with every ``model.<network argument>`` as ``model.net.<argument>`` (a ``+``/``++``/``~``
    kept), and one note per rewritten override."""
    out, notes = [], []
    for override in overrides:
        moved = _MOVED.match(override)
        if moved is None:
            out.append(override)
            continue
        new = f"{moved['prefix'] or ''}model.net.{moved['key']}{moved['rest']}"
        out.append(new)
        notes.append(
            f"note: model.{moved['key']} is model.net.{moved['key']} now (the network's arguments live "
            f"under model.net); running with {new}"
        )
    return out, notes


def accepts_moved_keys(main: Callable[..., Any]) -> Callable[..., Any]:
    """``main`` (reading its overrides from ``sys.argv``, as ``hydra.main`` does) with the moved keys
    forwarded."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        sys.argv[1:], notes = forward(sys.argv[1:])
        for note in notes:
            print(note, file=sys.stderr)
        return main(*args, **kwargs)

    return wrapper
