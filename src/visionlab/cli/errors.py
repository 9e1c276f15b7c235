"""Hydra's own user errors as visionlab's: one line ``error: ...`` on stderr and exit code 2.

Before a run starts, Hydra reports an unknown key (``nosuchkey=1``), an unknown config option
(``experiment=nope``), an override it cannot parse, or a run folder it cannot create (a read-only
``paths.log_dir``) in several lines and exits with code 1, from inside ``hydra.main``. ``one_line_errors``
wraps a ``@hydra.main`` function so these end like every other user error (``errors.UserError``).
``HYDRA_FULL_ERROR=1`` keeps Hydra's full report; any other exception is Hydra's to report, as before.

    @one_line_errors
    @hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
    def main(cfg): ...
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visionlab.config.errors import UserError
from visionlab.config.moved_keys import NETWORK_ARGUMENTS

_APPEND_HINT = re.compile(r"use (\+\S+)")


def one_line_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """``main`` (a ``@hydra.main`` function) with Hydra's user errors as one line and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        import hydra._internal.utils as hydra_utils

        report = getattr(
            hydra_utils, "run_and_report", None
        )  # what hydra.main calls around composing and running
        if report is None:  # another Hydra: its own report, as before
            return main(*args, **kwargs)

        def run_and_report(func):
            return report(lambda: _one_line(func))

        hydra_utils.run_and_report = run_and_report
        try:
            return main(*args, **kwargs)
        finally:
            hydra_utils.run_and_report = report

    return wrapper


def _one_line(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except Exception as exc:
        if os.environ.get("HYDRA_FULL_ERROR") != "1" and (report := _sweep_report(exc)) is not None:
            lines, code = report
            print("\n".join(lines), file=sys.stderr)
            sys.exit(code)
        message = user_message(exc)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _sweep_report(exc: BaseException) -> tuple[list[str], int] | None:
    """A sweep that ended with an error: a line per failed, interrupted or still running job and a summary
    (``sweeps.sweep_failure_report``), instead of Hydra's traceback of the first failed job."""
    sweeps = sys.modules.get(
        "visionlab.cluster.sweep_callback"
    )  # loaded by the sweep index callback when a sweep started
    return None if sweeps is None else sweeps.sweep_failure_report(exc)


def user_message(exc: BaseException) -> str | None:
    """The one-line message for a Hydra error the user can fix, or None for any other exception."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if isinstance(exc, MissingConfigException):
        return _missing_config(exc)
    if isinstance(exc, OverrideParseException):
        reason = _first_line(exc.message)
        return f"cannot parse the override {exc.override!r}: {reason}; see python train.py --help."
    if isinstance(exc, ConfigCompositionException):
        text = str(exc)
        override = re.search(r"Could not override '([^']+)'", text)
        if override and isinstance(exc.__cause__, (ConfigAttributeError, ConfigKeyError)):
            key = override.group(1)
            append = _APPEND_HINT.search(text)
            add = f", or add it as a new key with {append.group(1)}" if append else ""
            moved = key.removeprefix("+").removeprefix("+")
            if (other := _argument_of_another_network(moved, exc.__cause__)) is not None:
                return other
            if moved.startswith("model.") and moved.split(".", 1)[1] in NETWORK_ARGUMENTS:
                return (
                    f"{key}: no such config key: the network's arguments live under model.net (the network "
                    f"model/net names); use model.{'net.' + moved.split('.', 1)[1]}."
                )
            if swept := _swept_options():
                return (
                    f"{key}: no such key in the sweep's base config ({_first_line(str(exc.__cause__))}). "
                    f"Hydra composes a sweep once without its swept options ({', '.join(swept)}), from the "
                    f"default config groups; set the key for every job with ++{moved}=<value> (sets it where "
                    "a job's config has it, adds it where not), or check its spelling (python train.py --cfg "
                    "job)."
                )
            return (
                f"{key}: no such config key ({_first_line(str(exc.__cause__))}). Check its spelling (python "
                f"train.py --cfg job lists every key){add}."
            )
        cause = f" ({_first_line(str(exc.__cause__))})" if exc.__cause__ is not None else ""
        return f"{_first_line(text)}{cause}"
    if isinstance(
        exc, UserError
    ):  # raised before a run starts (a sweep's launcher settings) or by a sweep job
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None and _raised_by_hydra(exc):
        from visionlab.record.folder import unwritable_folder_error

        return str(unwritable_folder_error(Path(exc.filename or "."), exc))
    return None


def _argument_of_another_network(key: str, cause: BaseException) -> str | None:
    """For ``model.net.<arg>`` that the network in use lacks: what that network takes and which networks take
    ``<arg>`` (never the advice to add it with ``+``, which the network would refuse), else None."""
    if not key.startswith("model.net.") or key.count(".") != 2:
        return None
    net = getattr(cause, "parent_node", None)
    kind = net.get("type") if net is not None and hasattr(net, "get") else None
    from visionlab.networks.registry import REGISTRY

    if kind not in REGISTRY:
        return None
    argument = key.rsplit(".", 1)[1]
    takes = ", ".join(sorted(REGISTRY[kind].defaults))
    others = sorted(name for name, network in REGISTRY.items() if argument in network.defaults)
    where = (
        f"; {argument} is an argument of {' and '.join(others)} (model/net={others[0]})"
        if others
        else f"; further {kind} arguments go in model.net.args, e.g. '+model.net.args.{argument}=<value>'"
        if "args" in REGISTRY[kind].defaults
        else ""
    )
    return (
        f"{key}: a {kind} network (model/net={kind}) takes no {argument!r} (it takes {takes}){where}. Remove "
        "it or pick another model/net."
    )


_SWEPT = re.compile(r"^[^=]+=(?:.*,.*|(?:glob|range|choice|interval)\(.*)$")


def _swept_options() -> list[str]:
    """The command line's swept overrides (``experiment=glob(*)``, ``seed=1,2``) when it runs a sweep."""
    args = sys.argv[1:]
    if "-m" not in args and "--multirun" not in args:
        return []
    return [arg for arg in args if not arg.startswith("-") and _SWEPT.match(arg)]


def _missing_config(exc) -> str:
    missing = str(exc.missing_cfg_file or "")
    group, _, option = missing.rpartition("/")
    if group and exc.options:
        return (
            f"{group}={option}: no such config (conf/{missing}.yaml); {group} is one of "
            f"{', '.join(exc.options)}."
        )
    return f"cannot find the config {missing!r}: {_first_line(str(exc))}"


def refused(exc: UserError) -> int:
    """How a console script (``visionlab-predict``, ``visionlab-export``) ends on a user error: its first line
    on stderr, exit code 2."""
    print(f"error: {str(exc).splitlines()[0] if str(exc) else exc}", file=sys.stderr)
    return 2


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text).rstrip(".")


def _raised_by_hydra(exc: OSError) -> bool:
    """Whether Hydra itself raised ``exc`` (making the run or sweep folder), not the task it runs. A job's own
    error that Hydra raises again from its result (``JobReturn.return_value``; from a submitit job with no
    traceback left, e.g. W&B's ``ConnectionResetError``) is the job's, not Hydra's."""
    import hydra

    root = Path(hydra.__file__).resolve().parent
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((Path(tb.tb_frame.f_code.co_filename), tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    # the innermost frame outside the standard library's file code (pathlib, os) is the one that asked for it
    for file, function in reversed(frames):
        if file.name in ("pathlib.py", "os.py", "genericpath.py") or "pathlib" in file.parts:
            continue
        if function == "return_value":  # hydra.core.utils.JobReturn: a job's error, raised again
            return False
        try:
            return file.resolve().is_relative_to(root)
        except OSError:
            return False
    return False
