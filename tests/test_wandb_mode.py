"""W&B mode selection: never a prompt or a hang, online only with credentials and a reachable server."""

import pytest

from visionlab.tracking import wandb_logger


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no credentials file


def test_auto_is_offline_without_credentials_even_if_the_server_answers(no_env, monkeypatch):
    monkeypatch.setattr(wandb_logger, "server_reachable", lambda timeout=2.0: True)
    assert wandb_logger.resolve_mode("auto") == "offline"


def test_auto_is_offline_with_credentials_but_no_network(no_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # closed port: refused at once
    assert wandb_logger.resolve_mode("auto") == "offline"


def test_auto_is_online_with_credentials_from_netrc_and_a_reachable_server(no_env, monkeypatch, tmp_path):
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    (tmp_path / "netrc").chmod(0o600)
    monkeypatch.setattr(wandb_logger, "server_reachable", lambda timeout=2.0: True)
    assert wandb_logger.resolve_mode("auto") == "online"


def test_wandb_mode_env_wins_and_bad_values_name_the_key(no_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert wandb_logger.resolve_mode("online") == "offline"
    monkeypatch.delenv("WANDB_MODE")
    with pytest.raises(ValueError, match="logger.wandb.mode='sometimes'"):
        wandb_logger.resolve_mode("sometimes")
