"""W&B logger that never prompts, hangs or crashes: online with credentials and a reachable server, else
offline."""

from __future__ import annotations

import http.client
import logging
import netrc
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

from visionlab.config.errors import ConfigError

log = logging.getLogger(__name__)

MODES = ("auto", "online", "offline", "disabled")
# what wandb takes from WANDB_MODE (dryrun = offline; run and shared are wandb's own online variants)
ENVIRONMENT_MODES = ("online", "offline", "disabled", "dryrun", "run", "shared")
PROBE_TIMEOUT_S = 2.0


def base_url() -> str:
    """The server the installed wandb talks to: WANDB_BASE_URL, else wandb's settings files, else its
    default."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    import wandb

    return str(wandb.setup().settings.base_url)


def has_credentials(url: str) -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(urlparse(url).hostname or "") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _http_answer(url: str, timeout: float, answered: list) -> None:
    parts = urlparse(url)
    connection = (http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection)(
        parts.hostname, parts.port, timeout=timeout
    )
    try:
        connection.request("GET", f"{parts.path.rstrip('/')}/healthz")
        answered.append(connection.getresponse().status)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        connection.close()


def server_answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the server sends an HTTP answer (any status) within ``timeout`` seconds in all: a host that
    accepts the connection but never answers counts as unreachable."""
    answered: list = []
    probe = threading.Thread(target=_http_answer, args=(url, timeout, answered), daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(answered)


def environment_mode() -> str | None:
    """WANDB_MODE (lower case), or None when unset; a value wandb would refuse is a ConfigError naming it."""
    raw = os.environ.get("WANDB_MODE", "")
    env = raw.strip().lower()
    if not env:
        return None
    if env not in ENVIRONMENT_MODES:
        raise ConfigError(
            f"WANDB_MODE={raw} (environment variable) is not a W&B mode: it must be one of online, "
            "offline or disabled; or unset it to let logger.wandb.mode decide (logger=none runs "
            "without W&B)."
        )
    return env


def resolve_mode(mode: str = "auto") -> str:
    """WANDB_MODE wins (``dryrun`` = offline); ``auto`` is online only with credentials for wandb's configured
    server and an HTTP answer from it within 2 s."""
    env = environment_mode()
    if env:
        return "offline" if env == "dryrun" else env
    if mode not in MODES:
        raise ConfigError(f"logger.wandb.mode={mode!r} is not one of {MODES}")
    if mode != "auto":
        return mode
    url = base_url()
    return "online" if has_credentials(url) and server_answers(url) else "offline"


def make_wandb_logger(
    mode: str = "auto",
    save_dir: str = ".",
    init_timeout: float = 30.0,
    group: str | None = None,
    job_type: str | None = None,
    id: str | None = None,  # wandb.init's own name for it
    experiment: str | None = None,
    sweep: str | None = None,
    resume_from: str | None = None,
    train: bool = True,
    **kwargs,
):
    """A Lightning ``WandbLogger`` (or None for ``disabled``); extra kwargs go to ``wandb.init``, which gives
    up after ``init_timeout`` seconds (see ``wandb_policy.start``).

    W&B's naming is decided here, from the logger's config (``conf/logger/wandb.yaml``), not written back
    into the run's config: the group and job type (``policy.group_and_job_type``: the experiment, or in a
    multirun the sweep), and, when training resumes from ``resume_from``, the id the run folder (``save_dir``)
    recorded, so the same W&B run continues."""
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    from visionlab.config.hydra_job import is_multirun
    from visionlab.record.folder import RunFolder
    from visionlab.record.resume import wandb_id_to_resume
    from visionlab.tracking.wandb.policy import WandbTracker, group_and_job_type

    resolved = resolve_mode(mode)
    if resolved == "disabled":
        return None
    group, job_type = group_and_job_type(group, job_type, experiment or "", sweep if is_multirun() else None)
    id = id or wandb_id_to_resume(RunFolder(save_dir), resume_from, train)
    _no_sdk_analytics()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    log.info("W&B mode: %s", resolved)
    # the mode goes into the settings: Lightning's offline flag only sets WANDB_MODE, which wandb no longer
    # reads once its settings were loaded (base_url() loads them), so an offline run would still try to log in
    settings = wandb.Settings(init_timeout=init_timeout, silent=True, mode=resolved)
    logger = WandbLogger(
        save_dir=save_dir,
        offline=resolved == "offline",
        settings=settings,
        group=group,
        job_type=job_type,
        id=id,
        **kwargs,
    )
    # Lightning always passes anonymous=None, which wandb answers with a deprecation warning on every run;
    # not passing it means the same (resume="allow", which a resumed id relies on, stays Lightning's default)
    logger._wandb_init.pop("anonymous", None)
    logger.visionlab_tracker = WandbTracker(
        logger
    )  # the run starts, records and finishes it (tracking.plugins)
    return logger


def check_settings(node, key: str) -> None:
    """The logger's own values, checked with the run's config before anything is written (``config.rules``
    asks the module of every visionlab logger plug-in for its ``check_settings``): its mode and start
    timeout, and WANDB_MODE, which wins over the mode."""
    from visionlab.config.checks import expect, is_number

    if "mode" in node:
        expect(
            f"{key}.mode",
            node.get("mode"),
            lambda v: v in MODES,
            "one of auto, online, offline, disabled",
            f"{key}.mode=offline",
        )
    if "init_timeout" in node:
        expect(
            f"{key}.init_timeout",
            node.get("init_timeout"),
            lambda v: is_number(v) and v > 0,
            "a number of seconds > 0",
            f"{key}.init_timeout=30",
        )
    environment_mode()


def _no_sdk_analytics() -> None:
    """wandb's own usage analytics post to the server at exit with a 10 s timeout each: a silent server kept a
    failed run's process alive long after its error line. Our runs send W&B the run's data only."""
    try:
        from wandb.analytics.opentelemetry import opentelemetry_proxy
    except ImportError:  # other wandb versions: nothing to switch off
        return
    opentelemetry_proxy.disable()


def offline_run_dirs(logger) -> list[Path]:
    """Every ``offline-run-*`` folder of this W&B run in its save folder, oldest first: a resumed run writes
    one per process, and ``wandb sync`` needs them all."""
    current = offline_run_dir(logger)
    if current is None:
        return []
    return sorted({current, *current.parent.glob(f"offline-run-*-{logger.experiment.id}")})


def offline_run_dir(logger) -> Path | None:
    """The ``offline-run-*`` folder that ``wandb sync`` uploads, for an offline WandbLogger."""
    run = getattr(logger, "_experiment", None)
    if run is None or not getattr(run, "dir", None):
        return None
    folder = Path(run.dir).parent
    return folder if folder.name.startswith("offline-run") else None
