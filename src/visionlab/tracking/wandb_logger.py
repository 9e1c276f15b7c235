"""W&B logger that never prompts, hangs or crashes: online with credentials and a reachable server, else offline."""

from __future__ import annotations

import logging
import netrc
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from visionlab.errors import ConfigError

log = logging.getLogger(__name__)

MODES = ("auto", "online", "offline", "disabled")


def _host() -> str:
    return urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(_host()) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def server_reachable(timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((_host(), 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_mode(mode: str = "auto") -> str:
    """WANDB_MODE wins (``dryrun`` = offline); ``auto`` checks credentials first, then the network (2 s)."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env:
        return "offline" if env == "dryrun" else env
    if mode not in MODES:
        raise ConfigError(f"logger.wandb.mode={mode!r} is not one of {MODES}")
    if mode != "auto":
        return mode
    return "online" if has_credentials() and server_reachable() else "offline"


def make_wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs):
    """A Lightning ``WandbLogger`` (or None for ``disabled``); extra kwargs go to ``wandb.init``."""
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    resolved = resolve_mode(mode)
    if resolved == "disabled":
        return None
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    log.info("W&B mode: %s", resolved)
    settings = wandb.Settings(init_timeout=60, silent=True)
    logger = WandbLogger(save_dir=save_dir, offline=resolved == "offline", settings=settings, **kwargs)
    # Lightning always passes anonymous=None, which wandb answers with a deprecation warning on every run;
    # not passing it means the same (resume="allow", which a resumed id relies on, stays Lightning's default)
    logger._wandb_init.pop("anonymous", None)
    return logger


def offline_run_dir(logger) -> Path | None:
    """The ``offline-run-*`` folder that ``wandb sync`` uploads, for an offline WandbLogger."""
    run = getattr(logger, "_experiment", None)
    if run is None or not getattr(run, "dir", None):
        return None
    folder = Path(run.dir).parent
    return folder if folder.name.startswith("offline-run") else None
