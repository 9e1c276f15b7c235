"""Runs on a real single-node SLURM (the ``slurm`` fixture starts it): a DDP sweep job with 2 tasks, a DDP run
under ``srun -n2``, and the three ways a cluster stops a job (``scontrol requeue`` = preemption, Lightning's USR1,
submitit's USR2 at the time limit), sent one after the other to one sweep job, which must resume in its own folder
each time and end with the uninterrupted numbers (one job stopped three times: 4 process starts instead of 6).

Everything is submitted at once by one module fixture, so the jobs' waits overlap; the tests read the outcome. The
two single-process references run inside the test process, which would otherwise only wait: the suite is
CPU-bound on 2 cores, and every extra process pays ~10 s of imports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import slurm_cluster
from helpers import REPO, TINY_SIGNS, compose
from seg_helpers import TINY_SEG
from visionlab.runner import run

pytestmark = pytest.mark.slurm

STOPS = {"requeue": ["scontrol", "requeue"], "usr1": ["scancel", "--signal=USR1"],
         "usr2": ["scancel", "--signal=USR2"]}  # in this order, at the start of epochs 1, 2 and 3
SIGNS = [*(o for o in TINY_SIGNS if not o.startswith("trainer.max_epochs")), "seed=5", f"trainer.max_epochs={len(STOPS) + 1}",
         "logger=csv", "threads=1"]
PAUSES = [o for epoch in range(1, len(STOPS) + 1) for o in (
    f"+callbacks.pause{epoch}._target_=helpers.PauseOnce", f"+callbacks.pause{epoch}.epoch={epoch}",
    f"+callbacks.pause{epoch}.marker=${{paths.output_dir}}/paused_{epoch}")]
SEG = [o for o in TINY_SEG if not o.startswith(("trainer.accelerator", "trainer.devices", "data.n_test",
                                                  "data.eval_batch_size"))]
SEG += ["experiment=unet_baseline", "data.n_test=7", "data.eval_batch_size=2", "seed=1", "logger=csv", "threads=1"]
SLURM_LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", f"hydra.launcher.name={slurm_cluster.TEST_JOB_NAME}"]
TIMEOUT = 420


def _env() -> dict:
    # the jobs import the tests' helper callbacks; SLURM passes the submitting environment on
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}


def _train(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=_env(),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _jobs(sweep: Path) -> dict:
    try:
        return json.loads((sweep / "sweep_index.json").read_text())["jobs"]
    except (OSError, ValueError, KeyError):
        return {}


class _Stops:
    """Sends the stops sweep's job its next stop once it paused at the start of the next epoch (the previous
    epoch's last.ckpt written), then releases it from the requeue wait; ``step`` does what is due and returns at
    once.

    A requeued job waits ~2 min for its BeginTime, so it is started at once, but not within the second of its
    requeue: slurmd refuses a job credential issued in the second its old one was revoked ("Job credential
    revoked", the job then FAILS), which is why SLURM itself delays requeued jobs."""

    HOLD_S = 2.0

    def __init__(self, sweep: Path):
        self.sweep, self.sent, self.released, self.pending_since = sweep, [], 0, None

    def step(self) -> bool:
        (entry,) = _jobs(self.sweep).values() or [None]
        if entry is None or not entry.get("slurm_job_id"):
            return False
        job, run = entry["slurm_job_id"], Path(entry["run_dir"])
        if self.released < len(self.sent):  # stopped, not yet released
            if slurm_cluster.squeue_state(job) != "PENDING":
                return False
            self.pending_since = self.pending_since or time.monotonic()
            if time.monotonic() - self.pending_since >= self.HOLD_S:
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True,
                               timeout=20)
                self.released, self.pending_since = self.released + 1, None
            return False
        if len(self.sent) < len(STOPS) and (run / f"paused_{len(self.sent) + 1}").exists():
            assert (run / "checkpoints" / "last.ckpt").is_file()
            stop = list(STOPS)[len(self.sent)]
            subprocess.run([*STOPS[stop], job], check=True, timeout=30)
            self.sent.append(stop)
        return self.released == len(STOPS)


@pytest.fixture(scope="module")
def cluster_runs(slurm, tmp_path_factory):
    """Everything at once: the stops sweep (1 job) and the DDP sweep on SLURM, the uninterrupted reference here;
    once the DDP sweep is done, its best checkpoint tested by 2 tasks under srun and by this process."""
    root = tmp_path_factory.mktemp("slurm")
    logs = root / "logs"
    started = time.monotonic()
    deadline = started + TIMEOUT
    procs = {
        "stops": _train(["-m", *SLURM_LAUNCHER, "hydra.launcher.timeout_min=10", *SIGNS, "run_name=stopped",
                         *PAUSES, f"paths.log_dir={logs}", "sweep_name=stops"], root / "stops.log"),
        "ddp": _train(["-m", *SLURM_LAUNCHER, "hydra.launcher.tasks_per_node=2", "trainer=ddp_sim", *SEG,
                       f"paths.log_dir={logs}", "sweep_name=ddp"], root / "ddp.log"),
    }
    in_process = {"reference": run(compose(root, [*SIGNS, f"paths.log_dir={logs}"], output="reference"))}
    stops, best = _Stops(logs / "sweeps" / "stops"), None
    while True:
        assert time.monotonic() < deadline, f"SLURM scenarios unfinished after {TIMEOUT} s: {_jobs(stops.sweep)}"
        stops.step()
        if best is None and procs["ddp"].poll() is not None:
            (ddp_job,) = _jobs(logs / "sweeps" / "ddp").values() or [{"run_dir": str(root / "missing")}]
            best = Path(ddp_job["run_dir"]) / "checkpoints" / "best.ckpt"
            evaluate = [*SEG, "train=false", f"ckpt_path='{best}'", f"paths.log_dir={root / 'eval'}"]
            procs["srun"] = subprocess.Popen(
                ["srun", "--nodes=1", "--ntasks-per-node=2", "-c1", f"--job-name={slurm_cluster.TEST_JOB_NAME}",
                 "--time=10", sys.executable, str(REPO / "train.py"), *evaluate, "trainer=ddp_sim"],
                cwd=REPO, env=_env(), stdout=(root / "srun.log").open("w"), stderr=subprocess.STDOUT)
            if best.is_file():
                in_process["single_eval"] = run(compose(root, evaluate, output="single_eval"))
        if best is not None and all(p.poll() is not None for p in procs.values()):
            break
        time.sleep(0.5)
    print(f"SLURM scenarios took {time.monotonic() - started:.0f} s")
    codes = {name: p.returncode for name, p in procs.items()}
    codes |= {name: 0 if summary["status"] == "completed" else 1 for name, summary in in_process.items()}
    return {"root": root, "logs": logs, "codes": codes, "summaries": in_process}


def _log_tail(runs, name: str) -> str:
    if name in runs["summaries"]:
        return str(runs["summaries"][name].get("error"))
    log = runs["root"] / f"{name}.log"
    return log.read_text()[-3000:] if log.is_file() else f"{name} did not run"


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_ddp_sweep_job_with_two_tasks_records_one_run_that_equals_one_process(cluster_runs):
    assert cluster_runs["codes"]["ddp"] == 0, _log_tail(cluster_runs, "ddp")
    sweep = cluster_runs["logs"] / "sweeps" / "ddp"
    (job,) = _jobs(sweep).values()
    assert job["status"] == "completed"
    run = Path(job["run_dir"])
    assert [p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")] == [run.name]
    summary = _summary(run)
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["batch_size"] == {"global": 4, "per_process": 2}
    assert summary["slurm"]["ntasks"] == 2
    cases = _rows(run / "test_cases.csv")
    assert [int(r["case"]) for r in cases] == list(range(7))  # 7 cases on 2 ranks: each exactly once
    # the same checkpoint tested by one process scores every case the same
    assert cluster_runs["codes"].get("single_eval") == 0, _log_tail(cluster_runs, "single_eval")
    assert _rows(cluster_runs["root"] / "single_eval" / "test_cases.csv") == cases
    # and keeps the same cases to show: case 0, the best and the three worst, gathered from both ranks
    with np.load(run / "qualitative.npz") as two, np.load(cluster_runs["root"] / "single_eval" / "qualitative.npz") as one:
        assert sorted(two.files) == sorted(one.files) and "worst_3_index" in one.files
        for key in one.files:
            np.testing.assert_array_equal(two[key], one[key], err_msg=key)


def test_ddp_under_srun_is_one_run_folder_and_equals_one_process(cluster_runs):
    assert cluster_runs["codes"]["srun"] == 0, _log_tail(cluster_runs, "srun")
    runs = list((cluster_runs["root"] / "eval" / "runs" / "unet_baseline").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("slurm-"), runs  # both ranks wrote into one folder
    assert _summary(runs[0])["world_size"] == 2
    assert _rows(runs[0] / "test_cases.csv") == _rows(cluster_runs["root"] / "single_eval" / "test_cases.csv")


def test_a_job_stopped_three_ways_is_recorded_interrupted_each_time_and_resumes_to_the_same_numbers(cluster_runs):
    assert cluster_runs["codes"]["stops"] == 0, _log_tail(cluster_runs, "stops")
    assert cluster_runs["codes"]["reference"] == 0, _log_tail(cluster_runs, "reference")
    (job,) = _jobs(cluster_runs["logs"] / "sweeps" / "stops").values()
    assert job["status"] == "completed"
    run = Path(job["run_dir"])
    summary = _summary(run)
    assert summary["status"] == "completed" and summary["slurm"]["restart_count"] >= len(STOPS)
    assert summary["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
    interruptions = summary["interruptions"]
    assert [i["status"] for i in interruptions] == ["interrupted"] * len(STOPS)
    assert [i["epochs"] for i in interruptions] == [1, 2, 3]  # each attempt resumed where the last one stopped
    causes = ["terminated by SIGTERM", "SIGUSR1 (SLURM requeue signal): SLURM job",
              "SIGUSR2 (SLURM preemption or time limit): requeued by submitit"]  # requeue, USR1, USR2 in turn
    for interruption, cause in zip(interruptions, causes):
        assert cause in interruption["cause"], (cause, interruption["cause"])
    assert not list(run.glob("hpc_ckpt_*.ckpt"))  # Lightning's mid-epoch checkpoint is not used
    # the record's cost covers every attempt: each interrupted one (its own wall time and start) and this one
    starts = [i["started_at"] for i in interruptions] + [summary["started_at"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(i["wall_time_s"] > 0 for i in interruptions)
    assert summary["wall_time_s"] == pytest.approx(
        sum(i["wall_time_s"] for i in interruptions) + summary["wall_time_this_attempt_s"], abs=0.02 * len(STOPS))
    rows, reference = _rows(run / "metrics.csv"), _rows(cluster_runs["root"] / "reference" / "metrics.csv")
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in reference] == ["0", "1", "2", "3"]
    for row, ref in zip(rows, reference):
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            assert float(row[key]) == pytest.approx(float(ref[key]), rel=1e-6), (row["epoch"], key)
    assert summary["test"] == pytest.approx(_summary(cluster_runs["root"] / "reference")["test"], rel=1e-6)
