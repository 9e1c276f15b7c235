"""W&B mode selection and start: never a prompt or a hang. Auto mode is online only with credentials for the
installed wandb's configured server and an HTTP answer from it within ~2 s; an online start that fails ends
with one line within a bounded time, and the run record is still written."""

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import REPO
from visionlab.tracking.wandb import mode as wandb_mode
from wandb_stub import answering_server, silent_server


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no credentials file


def test_auto_is_offline_without_credentials_even_if_the_server_answers(no_env, monkeypatch):
    with answering_server() as url:
        monkeypatch.setenv("WANDB_BASE_URL", url)
        assert wandb_mode.server_answers(url)
        assert wandb_mode.resolve_mode("auto") == "offline"


def test_auto_is_offline_with_credentials_but_no_network(no_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # closed port: refused at once
    assert wandb_mode.resolve_mode("auto") == "offline"


def test_auto_is_offline_when_the_server_accepts_but_never_answers(no_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with silent_server() as url:
        monkeypatch.setenv("WANDB_BASE_URL", url)
        started = time.monotonic()
        assert wandb_mode.resolve_mode("auto") == "offline"
        assert time.monotonic() - started < 3.0


def test_auto_is_online_with_netrc_credentials_for_the_configured_server_that_answers(
    no_env, monkeypatch, tmp_path
):
    with answering_server() as url:
        monkeypatch.setenv("WANDB_BASE_URL", url)
        (tmp_path / "netrc").write_text("machine 127.0.0.1\n  login user\n  password " + "k" * 40 + "\n")
        (tmp_path / "netrc").chmod(0o600)
        assert wandb_mode.resolve_mode("auto") == "online"


def test_credentials_are_looked_up_for_the_installed_wandbs_server(no_env, tmp_path):
    import wandb

    default = str(wandb.setup().settings.base_url)
    assert wandb_mode.base_url() == default
    host = default.split("//")[1].split("/")[0].split(":")[0]
    (tmp_path / "netrc").write_text(f"machine {host}\n  login user\n  password " + "k" * 40 + "\n")
    (tmp_path / "netrc").chmod(0o600)
    assert wandb_mode.has_credentials(default)
    assert not wandb_mode.has_credentials("https://elsewhere.example")


def test_wandb_mode_env_wins_and_bad_values_name_the_key(no_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert wandb_mode.resolve_mode("online") == "offline"
    monkeypatch.delenv("WANDB_MODE")
    with pytest.raises(ValueError, match="logger.wandb.mode='sometimes'"):
        wandb_mode.resolve_mode("sometimes")


def test_online_start_against_a_silent_server_ends_in_one_line_and_keeps_the_record(tmp_path):
    with silent_server() as url:
        env = {**os.environ, "WANDB_MODE": "online", "WANDB_BASE_URL": url, "WANDB_API_KEY": "a" * 40}
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                "data.tracks_per_class=2",
                "data.frames_per_track=3",
                "data.test_tracks_per_class=1",
                "data.num_workers=0",
                "trainer.max_epochs=1",
                "logger.wandb.init_timeout=3",
                f"paths.log_dir={tmp_path}",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"W&B could not start the online run at {url}" in errors[0]
    assert "logger.wandb.mode=offline" in errors[0] and "Traceback" not in result.stderr
    assert elapsed < 60
    (summary_path,) = tmp_path.glob("runs/*/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "failed" and "W&B could not start" in summary["error"]


def test_auto_mode_without_any_wandb_setting_trains_offline_end_to_end(tmp_path):
    """The README's first command on a fresh machine: no WANDB_MODE, no key, no netrc. Auto mode picks
    offline, and the run must really start offline (not try to log in) and leave offline files that `wandb
    sync` takes; the console shows visionlab's lines, not the libraries' noise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "netrc"), WANDB_SILENT="true")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "data.tracks_per_class=2",
            "data.frames_per_track=3",
            "data.test_tracks_per_class=1",
            "data.num_workers=0",
            "trainer.max_epochs=1",
            f"paths.log_dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # the console shows our lines, not library noise
    assert "completed: cnn_synthetic (seed 12345)" in output and "run folder:" in output
    for noise in ("litlogger", "anonymous setting", "LeafSpec", "not supported by the model summary"):
        assert noise not in output, noise
    (summary_path,) = tmp_path.glob("runs/*/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed" and summary["wandb"]["mode"] == "offline"
    assert summary["wandb"]["sync_command"].startswith("wandb sync ")
    assert list(summary_path.parent.glob("wandb/offline-run-*/run-*.wandb"))
