"""What a cluster stop, a dead rank or a bad job leaves behind, without a cluster (tests/test_slurm.py runs
the same on a real SLURM): the record is written before W&B is asked anything, a tracker error caused by the
stop counts as the stop, attempts are kept before a last.ckpt exists and when one died unrecorded, a sweep's
index asks SLURM whether its running jobs still exist, a sweep ends in one line per failed job, launcher
settings that cannot work are fitted or refused, and one process at a time continues a run folder."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import REPO, TINY_SIGNS, compose
from visionlab.config.errors import ConfigError

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_sigterm_to_the_process_and_wandb_core_together_still_records_the_interruption(tmp_path):
    """What SLURM does on requeue, scancel or preemption: every process of the step gets SIGTERM, W&B's
    service included. With the default logger (W&B, offline here) the run must still end "interrupted" with
    its cause and epochs, exit 143, and say that W&B was not finished (before: ConnectionResetError, rc 1, no
    summary.json)."""
    args = [
        *(o for o in TINY_SIGNS if not o.startswith("trainer.max_epochs")),
        "trainer.max_epochs=3",
        "threads=1",
        "test=false",
        f"paths.log_dir={tmp_path}",
        "+callbacks.pause._target_=helpers.PauseOnce",
        f"+callbacks.pause.marker={tmp_path}/paused",
    ]
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "paused").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0][-3000:]
        time.sleep(0.2)
    core = [
        pid
        for pid in _children(process.pid)
        if "wandb-core" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]
    assert core, "W&B's service process was not found"
    for pid in [process.pid, *core]:
        os.kill(pid, signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 143, output[-3000:]
    assert "Traceback" not in output and "cannot create the run folder" not in output
    (folder,) = tmp_path.glob("runs/*/*")
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["status"], summary["error"], summary["epochs"]) == (
        "interrupted",
        "terminated by SIGTERM",
        1,
    )
    assert summary["wandb"]["id"] == (folder / "wandb_run_id.txt").read_text().strip()
    assert (
        "W&B" in output and "run record" in output
    )  # one warning line: W&B not finished, the record complete


def test_a_tracker_error_that_a_stop_signal_caused_counts_as_that_stop():
    from visionlab.run.signals import Stopped, stop_behind, stop_signals

    with stop_signals():
        threading.Timer(
            0.2, os.kill, (os.getpid(), signal.SIGTERM)
        ).start()  # the signal comes after the error
        stop = stop_behind(ConnectionResetError("Connection lost"), wait_s=5)
        assert isinstance(stop, Stopped) and stop.cause == "terminated by SIGTERM"
        assert stop_behind(stop) is stop
    with stop_signals():
        started = time.monotonic()
        assert (
            stop_behind(ConnectionResetError("Connection lost"), wait_s=0.3) is None
        )  # no signal: its own error
        assert time.monotonic() - started < 2
        assert stop_behind(ValueError("a bug"), wait_s=5) is None  # not a tracker's lost connection: no wait


def test_a_stop_signal_while_the_record_is_written_does_not_cut_it_short():
    from visionlab.run import signals as interruption

    steps = []
    with interruption.stop_signals(), interruption.hold_stops():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)  # the handler ran here: noted, not raised
        steps.append("record written")
        (noted,) = interruption._RECEIVED
    assert steps == ["record written"] and noted.cause == "terminated by SIGTERM"


def test_a_jobs_os_error_raised_again_by_hydra_is_not_a_run_folder_error():
    """submitit brings a job's exception back without its traceback; Hydra raises it again from the job's
    result. A W&B ConnectionResetError must not read "paths.log_dir: cannot create the run folder"."""
    from hydra.core.utils import JobReturn, JobStatus

    from visionlab.cli.errors import user_message

    job = JobReturn(overrides=["seed=1"], status=JobStatus.FAILED, _return_value=ConnectionResetError("."))
    with pytest.raises(ConnectionResetError) as raised:
        job.return_value  # noqa: B018 - the property raises the job's error
    assert user_message(raised.value) is None
    job = JobReturn(
        overrides=["seed=1"], status=JobStatus.FAILED, _return_value=PermissionError(13, "denied", "/x")
    )
    with pytest.raises(PermissionError) as raised:
        job.return_value  # noqa: B018
    assert user_message(raised.value) is None
    assert (
        user_message(ConfigError("trainer.max_epochs=-3 is not valid"))
        == "trainer.max_epochs=-3 is not valid"
    )


def test_a_refused_jobs_log_file_is_closed_before_its_folder_is_removed(tmp_path):
    from visionlab.config.hydra_job import close_log_files_in
    from visionlab.record.folder import RunFolder

    folder = tmp_path / "job"
    folder.mkdir()
    handler = logging.FileHandler(folder / "train.log", delay=True)  # as Hydra's job logging makes it
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        close_log_files_in(folder)
        RunFolder(folder).discard_if_empty()
        assert not folder.exists() and handler not in root.handlers
        logging.getLogger("submitit").error(
            "a line logged after the job"
        )  # reopened the file before: no error
        assert not folder.exists()
    finally:
        root.removeHandler(handler)


def _launcher_config(timeout_min: int, signal_delay_s: int):
    return OmegaConf.create(
        {
            "hydra": {
                "launcher": {
                    "_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                    "timeout_min": timeout_min,
                    "signal_delay_s": signal_delay_s,
                }
            }
        }
    )


def test_a_warning_signal_that_leaves_no_time_to_train_is_cut_with_one_line(capsys):
    from visionlab.cluster.sweep_callback import fit_signal_delay_to_time_limit

    config = _launcher_config(2, 120)
    fit_signal_delay_to_time_limit(config)
    assert config.hydra.launcher.signal_delay_s == 40
    (line,) = capsys.readouterr().err.splitlines()
    assert "hydra.launcher.signal_delay_s=120" in line and "using signal_delay_s=40" in line
    config = _launcher_config(240, 120)  # the preset: left as it is, silently
    fit_signal_delay_to_time_limit(config)
    assert config.hydra.launcher.signal_delay_s == 120 and capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match=r"hydra.launcher.timeout_min=1: too short .*timeout_min=2 or more"):
        fit_signal_delay_to_time_limit(_launcher_config(1, 120))


def test_srun_with_tasks_but_no_tasks_per_node_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from visionlab.run.execute import run

    for name in ("SLURM_NTASKS_PER_NODE", "SLURM_PROCID", "RANK", "LOCAL_RANK", "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "2")
    cfg = compose(tmp_path, [*TINY_SIGNS, "logger=csv"])
    (tmp_path / "run").mkdir()  # Hydra makes the run's folder before the run starts
    with pytest.raises(
        ConfigError, match=r"SLURM_NTASKS=2: .*srun --nodes=1 --ntasks-per-node=2 python train.py"
    ):
        run(cfg)
    assert not (tmp_path / "run").exists()  # nothing written, and Hydra's empty folder removed
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "2")
    from visionlab.cluster.ranks import check_slurm_tasks

    check_slurm_tasks()  # the form that works


HOLD_THE_FOLDER = """import sys, time
from visionlab.cluster.claim import hold_or_refuse
from visionlab.record.folder import RunFolder
with hold_or_refuse(RunFolder(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_resume_of_one_folder_is_refused_naming_the_process_that_runs_it(tmp_path):
    from visionlab.run.execute import run

    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"not read: refused before")
    (folder / "summary.json").write_text(json.dumps({"status": "interrupted", "epochs": 1}))
    before = sorted(p.name for p in folder.iterdir())
    holder = subprocess.Popen(  # the first resume, still running
        [sys.executable, "-c", HOLD_THE_FOLDER, str(folder)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        cfg = compose(tmp_path, [*TINY_SIGNS, "logger=csv", f"ckpt_path='{folder}/checkpoints/last.ckpt'"])
        with pytest.raises(ConfigError) as refused:
            run(cfg)
        assert str(refused.value) == (
            f"{folder}: process {holder.pid} on {os.uname().nodename} is already running "
            "this run; wait for it to end (or stop it), then resume again."
        )
        assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
        assert json.loads((folder / "summary.json").read_text()) == {"status": "interrupted", "epochs": 1}
    finally:
        holder.kill()
        holder.wait()


def test_attempts_are_kept_before_a_last_ckpt_exists_and_when_one_died_unrecorded(tmp_path):
    from visionlab.record.folder import RunFolder
    from visionlab.run.record import UNRECORDED, earlier_attempts

    folder = RunFolder(tmp_path / "job")
    cfg = OmegaConf.create({"train": True, "ckpt_path": None, "resume": True})
    assert earlier_attempts(cfg, folder) == []  # a fresh folder
    folder.hydra.mkdir(parents=True)  # an attempt that died before it wrote anything else (rank 0 killed)
    assert earlier_attempts(cfg, folder) == [
        {"status": "interrupted", "cause": UNRECORDED, "epochs": 0, "wall_time_s": None, "started_at": None}
    ]
    # a job SLURM requeued before its first last.ckpt: its record is kept although there is nothing to resume
    folder.write_summary(
        {
            "status": "interrupted",
            "error": "stopped by SIGUSR2",
            "epochs": 0,
            "wall_time_s": 31.5,
            "started_at": 1000.0,
        }
    )
    (history,) = earlier_attempts(cfg, folder)
    assert (history["cause"], history["epochs"], history["wall_time_s"]) == ("stopped by SIGUSR2", 0, 31.5)
    assert (
        earlier_attempts(OmegaConf.create({"train": True, "ckpt_path": None, "resume": False}), folder) == []
    )
    # then an attempt that trained two epochs and was killed without a record: metrics.csv says how far it got
    folder.write_metrics([{"epoch": 0, "val/acc": 0.1}, {"epoch": 1, "val/acc": 0.2}])
    recorded, unrecorded = earlier_attempts(cfg, folder)
    assert recorded["cause"] == "stopped by SIGUSR2" and (unrecorded["cause"], unrecorded["epochs"]) == (
        UNRECORDED,
        2,
    )


def _fake_squeue(tmp_path: Path, monkeypatch, alive: dict[str, str]) -> None:
    """A ``squeue`` on PATH that knows only ``alive`` (id -> state), as SLURM answers for jobs long gone."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    lines = "".join(f"{job} {state}\\n" for job, state in alive.items())
    script = bin_dir / "squeue"
    script.write_text(
        "#!/bin/sh\n"
        + (
            f"printf '{lines}'\n"
            if alive
            else "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n"
        )
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_a_running_job_whose_slurm_job_is_gone_reads_as_interrupted_and_a_pending_one_as_running(
    tmp_path, monkeypatch
):
    from visionlab.cluster.sweep_index import settle_index, update_index

    sweep = tmp_path / "sweep"
    for key, job_id in (("a", "41"), ("b", "42")):
        update_index(sweep, key, {"status": "running", "slurm_job_id": job_id, "run_dir": str(sweep / key)})
    index = sweep / "sweep_index.json"
    _fake_squeue(tmp_path, monkeypatch, {"42": "PENDING"})  # 41: rank 0 killed, the job gone; 42: requeued
    settle_index(index)
    jobs = json.loads(index.read_text())["jobs"]
    assert (
        jobs["a"]["status"] == "interrupted"
        and "SLURM job 41 ended without recording an end" in jobs["a"]["error"]
    )
    assert jobs["b"]["status"] == "running"
    assert json.loads(index.read_text())["counts"] == {"interrupted": 1, "running": 1}
    _fake_squeue(tmp_path, monkeypatch, {})  # every id unknown to SLURM
    settle_index(index)
    assert json.loads(index.read_text())["counts"] == {"interrupted": 2}


def test_a_sweep_that_ends_with_failed_jobs_says_so_in_one_line_each_and_a_summary(tmp_path, monkeypatch):
    from visionlab.cluster import sweep_callback as sweeps
    from visionlab.cluster.sweep_index import update_index

    sweep = tmp_path / "sweep"
    update_index(sweep, "seed=1", {"status": "completed"})
    update_index(sweep, "seed=2", {"status": "failed", "error": "ConfigError: model.lr=-1 is not valid"})
    update_index(sweep, "seed=3", {"status": "running", "slurm_job_id": "77"})
    _fake_squeue(tmp_path, monkeypatch, {"77": "RUNNING"})
    monkeypatch.setattr(sweeps, "_STARTED_SWEEPS", [sweep])
    lines, code = sweeps.sweep_failure_report(
        RuntimeError("Job 76_1 has not produced any output (state: FAILED)")
    )
    assert code == 1
    assert lines == [
        "error: RuntimeError: Job 76_1 has not produced any output (state: FAILED)",
        "error: job seed=2 failed: ConfigError: model.lr=-1 is not valid",
        "job seed=3 is still running (SLURM job 77)",
        (
            f"sweep {sweep}: 1 completed, 1 failed, 0 interrupted, 1 still running; the errors are in "
            f"{sweep / 'sweep_index.json'}."
        ),
        (
            "The sweep command stopped waiting: wait for the running jobs (`squeue -j 77`), then run the "
            "same command again: completed jobs are skipped, unfinished ones continue."
        ),
    ]
    # a job's own error raised again by Hydra is not repeated
    lines, _ = sweeps.sweep_failure_report(ConfigError("model.lr=-1 is not valid"))
    assert not lines[0].startswith("error: ConfigError")


def test_a_key_missing_from_a_sweeps_base_config_is_explained_with_the_override_that_works(
    tmp_path, monkeypatch
):
    """A sweep is composed once without its swept options: ``data.data_dir=…`` with ``experiment=glob(*)``
    fails on the default data (synthetic, no data_dir). ``+data.data_dir`` would then clash with the jobs' own
    data_dir; ``++data.data_dir`` sets it for every job."""
    from hydra.errors import ConfigCompositionException

    from visionlab.cli.errors import user_message

    with pytest.raises(ConfigCompositionException) as raised:
        compose(tmp_path, ["data.data_dir=/d"])
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "experiment=glob(*)", "data.data_dir=/d"])
    message = user_message(raised.value)
    assert message.startswith("data.data_dir: no such key in the sweep's base config (")
    assert (
        "without its swept options (experiment=glob(*))" in message and "++data.data_dir=<value>" in message
    )
    assert "+data.data_dir=" not in message.replace("++data.data_dir", "")
    monkeypatch.setattr(
        sys, "argv", ["train.py", "data.data_dir=/d"]
    )  # a single run: add it, or fix the spelling
    assert "add it as a new key with +data.data_dir" in user_message(raised.value)


def test_a_sweep_whose_time_limit_is_too_short_is_refused_before_anything_is_submitted(tmp_path, capsys):
    """Hydra turns a callback's exception into a warning: the refusal must end the command itself."""
    from visionlab.cluster.sweep_callback import SweepIndexCallback

    config = _launcher_config(1, 120)
    config.hydra.sweep = {"dir": str(tmp_path / "sweep")}
    with pytest.raises(SystemExit) as exited:
        SweepIndexCallback().on_multirun_start(config)
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert (
        line.startswith("error: hydra.launcher.timeout_min=1: too short")
        and not (tmp_path / "sweep").exists()
    )


def test_a_requeue_whose_scontrol_slurm_killed_is_recorded_as_requeued(tmp_path, monkeypatch):
    """SLURM answers ``scontrol requeue`` with SIGTERM to every process of the job, submitit's ``scontrol``
    child too: submitit then reports "not requeued" although SLURM requeued the job. Its restart count says
    so."""
    from visionlab.run.signals import REQUEUED_BY_SUBMITIT, Stopped, stop_signals

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'JobId=5 JobName=x Restarts=1 BatchFlag=1'\n")
    (bin_dir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "5")

    def submitit_with_its_scontrol_killed(signum, frame):
        raise subprocess.CalledProcessError(-signal.SIGTERM, ["scontrol", "requeue", "5"])

    old = signal.signal(signal.SIGUSR2, submitit_with_its_scontrol_killed)
    try:
        for restarts_before, requeued in (
            ("0", True),
            ("1", False),
        ):  # 1 before: SLURM did not requeue it now
            monkeypatch.setenv("SLURM_RESTART_COUNT", restarts_before)
            with stop_signals(), pytest.raises(Stopped) as caught:
                os.kill(os.getpid(), signal.SIGUSR2)
                time.sleep(1)
            assert (caught.value.cause == REQUEUED_BY_SUBMITIT) == requeued, caught.value.cause
            assert (caught.value.reraise is None) == requeued
    finally:
        signal.signal(signal.SIGUSR2, old)
