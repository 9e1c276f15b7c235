"""Which W&B mode a run gets, decided without a prompt or a hang: ``WANDB_MODE`` wins; ``auto`` is online only
with credentials for the installed wandb's configured server and an HTTP answer from it within ~2 s, else
offline (a later ``wandb sync`` uploads the run)."""

from __future__ import annotations

import http.client
import netrc
import os
import threading
from urllib.parse import urlparse

from visionlab.config.errors import ConfigError

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
