"""The cluster path without a cluster: ranks from the environment, SLURM-named run folders, the global batch,
DDP shards, stop signals and their causes, and a sweep job that continues after it was stopped
(test_slurm.py runs the same on a real SLURM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, TINY_SIGNS
from visionlab.cluster import ranks as distributed
from visionlab.cluster import run_folders
from visionlab.data.sampling import EpochSeededSampler
from visionlab.run.signals import Stopped, stop_signals

RANK_VARS = (
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_RESTART_COUNT",
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in RANK_VARS:
        monkeypatch.delenv(name, raising=False)
    run_folders.run_dir.cache_clear()
    yield monkeypatch
    run_folders.run_dir.cache_clear()


@pytest.mark.parametrize(
    "env, rank",
    [
        ({}, 0),
        ({"RANK": "3"}, 3),  # torchrun
        ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, 1000 * 0 + 1),  # a child Lightning started
        ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, 0),  # Lightning's launching process
        ({"SLURM_NTASKS": "2", "SLURM_PROCID": "1"}, 1),  # srun / submitit with 2 tasks
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, 0),
    ],
)
def test_global_rank_is_read_from_the_launchers_environment(clean_env, env, rank):
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert distributed.global_rank() == rank
    assert distributed.is_rank_zero() == (rank == 0)


def test_run_folders_under_slurm_are_named_by_the_job_and_shared_by_its_ranks(clean_env, tmp_path):
    clean_env.setenv("SLURM_JOB_ID", "812")
    clean_env.setenv("SLURM_STEP_ID", "0")
    clean_env.setenv("SLURM_NTASKS", "2")
    first = run_folders.run_dir(str(tmp_path), "cnn_x")
    assert first == str(tmp_path / "runs" / "cnn_x" / "slurm-812.0")
    Path(first).mkdir(parents=True)
    run_folders.run_dir.cache_clear()  # another rank: same folder although it exists
    assert run_folders.run_dir(str(tmp_path), "cnn_x") == first
    # a single-task batch step running the same experiment twice gets a second folder ...
    clean_env.setenv("SLURM_NTASKS", "1")
    clean_env.delenv("SLURM_STEP_ID")
    Path(tmp_path / "runs" / "cnn_x" / "slurm-812").mkdir()
    run_folders.run_dir.cache_clear()
    assert run_folders.run_dir(str(tmp_path), "cnn_x").endswith("slurm-812-2")
    # ... but the job restarted by SLURM (requeue, preemption) finds its own
    clean_env.setenv("SLURM_RESTART_COUNT", "1")
    run_folders.run_dir.cache_clear()
    assert run_folders.run_dir(str(tmp_path), "cnn_x").endswith("slurm-812")
    clean_env.setenv("SLURM_ARRAY_JOB_ID", "800")
    clean_env.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert run_folders.slurm_run_name() == "slurm-800_3"


@pytest.mark.parametrize("length, world", [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_ddp_training_shards_the_same_permutation_with_equal_steps_per_rank(length, world):
    single = list(EpochSeededSampler(length, seed=4, epoch=2))
    shards = [
        list(EpochSeededSampler(length, seed=4, epoch=2, rank=r, num_replicas=world)) for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of steps (DDP would hang)
    interleaved = [shards[r][i] for i in range(len(shards[0])) for r in range(world)]
    assert interleaved[:length] == single  # the single process's order, dealt round-robin
    assert set(interleaved) == set(range(length))


def test_the_global_batch_is_divided_over_the_ranks_or_refused():
    from data_helpers import datamodule as configured_datamodule
    from visionlab.config.errors import ConfigError

    datamodule = configured_datamodule("synthetic_signs", batch_size=64, eval_batch_size=64, num_workers=0)
    datamodule.use_global_batch(4)
    assert (datamodule.global_batch_size, datamodule.batch_size) == (64, 16)
    with pytest.raises(ConfigError, match=r"data.batch_size=64 is the global batch .* 3 processes"):
        datamodule.use_global_batch(3)


def _raise_in_handler(signum: int, previous=None) -> Stopped:
    old = signal.signal(signum, previous) if previous is not None else None
    try:
        with stop_signals(), pytest.raises(Stopped) as caught:
            os.kill(os.getpid(), signum)
            time.sleep(1)
    finally:
        if old is not None:
            signal.signal(signum, old)
    return caught.value


def test_each_stop_signal_ends_the_run_with_its_cause_and_exit_code(clean_env):
    from visionlab.run.signals import exit_code

    term = _raise_in_handler(signal.SIGTERM)
    assert term.cause == "terminated by SIGTERM" and exit_code(term) == 143
    usr1 = _raise_in_handler(signal.SIGUSR1)  # not under SLURM: nothing to requeue
    assert (
        "SIGUSR1" in usr1.cause
        and "not under SLURM" in usr1.cause
        and exit_code(usr1) == 128 + signal.SIGUSR1
    )

    def submitit_requeues(signum, frame):
        sys.exit(-1)  # what submitit's handler does once it requeued the job

    def submitit_refuses(signum, frame):
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    requeued = _raise_in_handler(signal.SIGUSR2, submitit_requeues)
    assert "requeued by submitit" in requeued.cause and requeued.reraise is None
    refused = _raise_in_handler(signal.SIGUSR2, submitit_refuses)
    assert "not requeued: Job not requeued because: timed-out too many times." in refused.cause
    assert isinstance(refused.reraise, RuntimeError)  # raised again for submitit once the run is recorded

    def submitit_requeue_brings_sigterm(signum, frame):
        os.kill(os.getpid(), signal.SIGTERM)  # SLURM answers `scontrol requeue` with SIGTERM, maybe at once
        time.sleep(0.05)  # ... delivered while submitit's handler still runs
        sys.exit(-1)

    raced = _raise_in_handler(signal.SIGUSR2, submitit_requeue_brings_sigterm)
    assert (
        "requeued by submitit" in raced.cause and raced.signum == signal.SIGUSR2
    )  # one stop, its real cause

    def rank_one_goes_on(signum, frame):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)

    late = _raise_in_handler(
        signal.SIGUSR2, rank_one_goes_on
    )  # the SIGTERM that came meanwhile still stops it
    assert late.cause == "terminated by SIGTERM" and exit_code(late) == 143


def _sweep(tmp_path: Path, *extra: str, seeds: str = "3", epochs: int = 2) -> subprocess.Popen:
    common = [
        *(o for o in TINY_SIGNS if not o.startswith("trainer.max_epochs")),
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        f"paths.log_dir={tmp_path}",
        "sweep_name=s",
        f"seed={seeds}",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), "-m", *common, *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


PAUSE = ["+callbacks.pause._target_=helpers.PauseOnce", "+callbacks.pause.marker=${paths.output_dir}/paused"]


def _paused_sweep(tmp_path: Path) -> subprocess.Popen:
    """A one-job sweep, returned once the job paused after its first epoch (checkpoints written)."""
    proc = _sweep(tmp_path, *PAUSE)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "sweeps" / "s").glob("*/paused")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.2)
    return proc


# the same path runs on a real SLURM in test_slurm.py (default suite); this is the local launcher
@pytest.mark.slow
def test_a_stopped_sweep_job_is_interrupted_in_the_index_and_continues_when_the_sweep_runs_again(tmp_path):
    sweep = tmp_path / "sweeps" / "s"
    first = _paused_sweep(tmp_path)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=60)[0]
    assert first.returncode == 143, output[-3000:]
    (job,) = json.loads((sweep / "sweep_index.json").read_text())["jobs"].values()
    assert (job["status"], job["error"]) == ("interrupted", "terminated by SIGTERM")
    run = Path(job["run_dir"])
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    # the same sweep again (the pause marker is there now): the job continues from its last.ckpt
    second = _sweep(tmp_path, *PAUSE)
    output = second.communicate(timeout=180)[0]
    assert second.returncode == 0, output[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
    assert [i["cause"] for i in summary["interruptions"]] == ["terminated by SIGTERM"]
    assert summary["wall_time_s"] == pytest.approx(  # the cost of both attempts
        summary["interruptions"][0]["wall_time_s"] + summary["wall_time_this_attempt_s"], abs=0.02
    )
    (job,) = json.loads((sweep / "sweep_index.json").read_text())["jobs"].values()
    assert job["status"] == "completed"
    assert [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]] == ["0", "1"]


# DDP sweep jobs run on a real SLURM in test_slurm.py (default suite); this is the local launcher
@pytest.mark.slow
def test_a_local_ddp_sweep_runs_each_job_once_with_two_processes(tmp_path):
    """Lightning starts rank 1 by re-running the command: inside a multirun that must be the one job (not the
    whole sweep again), and the second job must start its own process group (the first one's has ended)."""
    sweep = _sweep(tmp_path, "trainer=ddp_sim", "test=false", seeds="1,2", epochs=1)
    output = sweep.communicate(timeout=300)[0]
    assert sweep.returncode == 0, output[-3000:]
    jobs = json.loads((tmp_path / "sweeps" / "s" / "sweep_index.json").read_text())["jobs"]
    assert len(jobs) == 2 and {job["status"] for job in jobs.values()} == {"completed"}
    for job in jobs.values():
        summary = json.loads((Path(job["run_dir"]) / "summary.json").read_text())
        assert summary["world_size"] == 2 and summary["batch_size"] == {"global": 64, "per_process": 32}
        assert summary["steps"] == 11  # 645 training images / 64 per global step: as one process
    assert not (tmp_path / "runs").exists()  # no rank made a folder of its own


@pytest.mark.parametrize("name", ["../../../esc", "a/b", "</script><b>x", "..", ".hidden"])
def test_run_folders_named_from_user_text_stay_one_folder_under_the_log_folder(clean_env, tmp_path, name):
    folder = Path(run_folders.run_dir(str(tmp_path / "logs"), name)).resolve()
    assert folder.parent.parent == (tmp_path / "logs" / "runs").resolve()  # runs/<one safe name>/<run>
    assert folder.parent.name not in ("", ".", "..") and not folder.parent.name.startswith(".")


def test_a_sweep_job_killed_with_sigkill_reads_as_interrupted_not_running(tmp_path):
    from visionlab.cluster.sweep_index import read_index

    sweep = tmp_path / "sweeps" / "s"
    proc = _paused_sweep(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    index = sweep / "sweep_index.json"
    assert json.loads(index.read_text())["counts"] == {"running": 1}  # what the dead process left
    (job,) = read_index(index)
    assert job.status == "interrupted" and "killed" in job.error


def test_last_ckpt_is_written_at_every_epoch_even_when_the_score_does_not_improve(tmp_path):
    """What a preempted job resumes from: Lightning 2.6 alone rewrites last.ckpt only with a new best."""
    import torch

    from helpers import compose
    from visionlab.run.execute import run

    # val/loss falls while the model learns, so with mode=max the best checkpoint stays at epoch 0
    run(
        compose(
            tmp_path,
            [
                *TINY_SIGNS,
                "trainer.max_epochs=3",
                "test=false",
                "logger=csv",
                "monitor=val/loss",
                "monitor_mode=max",
            ],
        )
    )
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert best["epoch"] == 0 and last["epoch"] == 2
