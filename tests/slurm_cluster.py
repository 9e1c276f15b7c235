"""A real single-node SLURM for the tests (``.ci/slurm_single_node.sh``): started once per session when this
machine has the Debian packages and we are root, stopped by pid at the end; reused when one already answers.
Tests that need it take the ``slurm`` fixture (marked ``slurm``: deselect with ``-m "not slurm"``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "slurm_single_node.sh"
PACKAGES = ("slurm-wlm", "munge", "slurmdbd", "mariadb-server")
TEST_JOB_NAME = "vl-test"  # our test jobs' SLURM name: leftovers of an earlier session are cancelled by it


def answers() -> bool:
    """A SLURM controller answers and its node can run jobs."""
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(
        s.strip("*~#") in ("idle", "mixed", "allocated") for s in out.stdout.split()
    )


def why_unavailable() -> str | None:
    if answers():
        return None
    if os.geteuid() != 0:
        return "starting a SLURM needs root (deselect with -m 'not slurm')"
    missing = [p for p in PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        return f"SLURM packages not installed ({', '.join(missing)}): .ci/run installs them with apt-get"
    return None


def start(piddir: Path) -> list[int]:
    """Start the daemons; their pids (to stop them by pid). Raises if SLURM does not come up."""
    piddir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PIDDIR": str(piddir)}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180)
    pids = [
        int(p.read_text().strip()) for p in sorted(piddir.glob("*.pid")) if p.read_text().strip().isdigit()
    ]
    if done.returncode != 0 or not answers():
        stop(pids)
        raise RuntimeError(f"SLURM did not start:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return pids


def stop(pids: list[int]) -> None:
    """SIGTERM each daemon by pid, then SIGKILL what is still alive after 15 s."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cancel_leftovers() -> None:
    subprocess.run(["scancel", "-n", TEST_JOB_NAME], capture_output=True, timeout=20)


def squeue_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=20)
    return out.stdout.strip()
