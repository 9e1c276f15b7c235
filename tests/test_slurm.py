"""Runs on a real single-node SLURM (the ``slurm`` fixture starts it): a DDP sweep job with 2 tasks, a DDP run
under ``srun -n2``, the ways a cluster stops a job (``scontrol requeue`` = preemption, Lightning's USR1,
submitit's USR2, ``scancel``), sent one after the other to one sweep job with the default (W&B offline)
logger, which must resume in its own folder and W&B run each time and end with the uninterrupted numbers; a
job that runs into a 2-minute time limit again and again (csv logger); a DDP job whose rank 0, and one whose
rank 1, is killed with -9; and an invalid value inside a submitit sweep.

Everything is submitted at once by one module fixture, so the jobs' waits overlap; the tests read the outcome.
The single-process references run inside the test process, which would otherwise only wait: the suite is
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
from visionlab.run.execute import run

pytestmark = pytest.mark.slurm

# in this order, at the start of epochs 1..4. scancel first: the sweep command then ends (submitit polls a job
# that ended without a result ~every half of the time since it was submitted: soon after, a short wait) and
# the same command again continues the job, which is then requeued, and stopped by USR1 and USR2 in turn
STOPS = {
    "scancel": ["scancel"],
    "requeue": ["scontrol", "requeue"],
    "usr1": ["scancel", "--signal=USR1"],
    "usr2": ["scancel", "--signal=USR2"],
}
# the default logger (W&B, offline in the tests): SLURM signals wandb-core with the job, the record must not
# care
SIGNS_WANDB = [
    *(o for o in TINY_SIGNS if not o.startswith("trainer.max_epochs")),
    "seed=5",
    f"trainer.max_epochs={len(STOPS) + 1}",
    "threads=1",
]
SIGNS = [*SIGNS_WANDB, "logger=csv"]
PAUSES = [
    o
    for epoch in range(1, len(STOPS) + 1)
    for o in (
        f"+callbacks.pause{epoch}._target_=helpers.PauseOnce",
        f"+callbacks.pause{epoch}.epoch={epoch}",
        f"+callbacks.pause{epoch}.marker=${{paths.output_dir}}/paused_{epoch}",
    )
]
SEG = [
    o
    for o in TINY_SEG
    if not o.startswith(("trainer.accelerator", "trainer.devices", "data.n_test", "data.eval_batch_size"))
]
SEG += [
    "experiment=unet_baseline",
    "data.n_test=7",
    "data.eval_batch_size=2",
    "seed=1",
    "logger=csv",
    "threads=1",
]
SLURM_LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    f"hydra.launcher.name={slurm_cluster.TEST_JOB_NAME}",
]
TIMEOUT = 900
# A 2-minute limit: the preset's signal_delay_s=120 is cut to 40 s; each epoch takes >= 10 s, so the 5 epochs
# need more than one attempt's ~50-80 s of training: the job is requeued at its limit (submitit's USR2) until
# done.
LIMIT = [
    "hydra.launcher.timeout_min=2",
    "+callbacks.slow._target_=cluster_helpers.SlowEpochs",
    "+callbacks.slow.seconds=10",
]
KILLS = [
    "hydra.launcher.tasks_per_node=2",
    "trainer=ddp_sim",
    *SIGNS[:-4],
    "trainer.max_epochs=2",
    "logger=csv",
    "threads=1",
    "+callbacks.kill._target_=cluster_helpers.KillRankOnce",
    "+callbacks.kill.rank=0,1",
    "+callbacks.kill.marker=${paths.output_dir}/killed",
]


def _env() -> dict:
    # the jobs import the tests' helper callbacks; SLURM passes the submitting environment on
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    }


def _train(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=REPO,
        env=_env(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _jobs(sweep: Path) -> dict:
    try:
        return json.loads((sweep / "sweep_index.json").read_text())["jobs"]
    except (OSError, ValueError, KeyError):
        return {}


def _release_requeued() -> None:
    """Start our requeued jobs now instead of after their ~2 min BeginTime, but not within the second of their
    requeue (see ``_Stops``): a pending job whose reason is BeginTime is released once seen twice, 2 s
    apart."""
    out = subprocess.run(
        ["squeue", "-h", "-n", slurm_cluster.TEST_JOB_NAME, "-t", "PENDING", "-o", "%i %r"],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
    )
    now = time.monotonic()
    for line in out.stdout.splitlines():
        job, _, reason = line.partition(" ")
        if reason.strip() != "BeginTime":
            continue
        first = _PENDING_SINCE.setdefault(job, now)
        if now - first >= _Stops.HOLD_S:
            subprocess.run(
                ["scontrol", "update", f"JobId={job}", "StartTime=now"],
                check=False,
                capture_output=True,
                timeout=20,
            )
            _PENDING_SINCE.pop(job)


_PENDING_SINCE: dict[str, float] = {}


def _slurm_jobs_gone(sweep: Path) -> bool:
    """Every SLURM job the sweep's index names has left the queue."""
    ids = [str(job["slurm_job_id"]) for job in _jobs(sweep).values() if job.get("slurm_job_id")]
    if not ids:
        return False
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i"], check=False, capture_output=True, text=True, timeout=20
    )
    return not set(ids) & set(out.stdout.split())


class _Stops:
    """Sends the stops sweep's job its next stop once it paused at the start of the next epoch (the previous
    epoch's last.ckpt written), then releases it from the requeue wait; ``step`` does what is due and returns
    at once.

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
        if self.released < len(
            self.sent
        ):  # stopped, not yet restarted (a cancelled job is run again by a rerun)
            if self.sent[-1] == "scancel" or slurm_cluster.squeue_state(job) == "RUNNING":
                self.released += 1
            return False
        if len(self.sent) < len(STOPS) and (run / f"paused_{len(self.sent) + 1}").exists():
            assert (run / "checkpoints" / "last.ckpt").is_file()
            stop = list(STOPS)[len(self.sent)]
            subprocess.run([*STOPS[stop], job], check=True, timeout=30)
            self.sent.append(stop)
        return self.released == len(STOPS)


SLOW_SCENARIOS = {  # run only when their test is selected (-m slow): minutes of requeues and DDP restarts
    "limit": "test_a_job_longer_than_its_time_limit_completes_across_requeues_with_every_attempt_recorded",
    "kills": "test_a_ddp_job_whose_rank_0_or_rank_1_is_killed_is_recorded_and_resumes",
}


@pytest.fixture(scope="module")
def cluster_runs(slurm, tmp_path_factory, request):
    """Everything at once on SLURM: the stops sweep (1 job, W&B), the time-limit sweep (1 job, csv), the DDP
    sweep, the rank-kill sweep (2 DDP jobs) and a sweep with an invalid value; the uninterrupted reference
    here. Once the stops and kill sweeps end, each is run again (the same command), which continues its
    unfinished jobs; once the DDP sweep is done, its best checkpoint tested by 2 tasks under srun and by this
    process."""
    root = tmp_path_factory.mktemp("slurm")
    logs = root / "logs"
    started = time.monotonic()
    deadline = started + TIMEOUT
    selected = {item.originalname for item in request.session.items}
    wanted = {name for name, test in SLOW_SCENARIOS.items() if test in selected}
    commands = {  # each run a second time once it ended with an unfinished job
        "stops": [
            "-m",
            *SLURM_LAUNCHER,
            "hydra.launcher.timeout_min=10",
            *SIGNS_WANDB,
            "run_name=stopped",
            *PAUSES,
            f"paths.log_dir={logs}",
            "sweep_name=stops",
        ],
        "kills": ["-m", *SLURM_LAUNCHER, *KILLS, f"paths.log_dir={logs}", "sweep_name=kills"],
    }
    commands = {name: args for name, args in commands.items() if name not in SLOW_SCENARIOS or name in wanted}
    once = {
        "limit": [
            "-m",
            *SLURM_LAUNCHER,
            *LIMIT,
            *SIGNS,
            "run_name=limited",
            f"paths.log_dir={logs}",
            "sweep_name=limit",
        ],
        "invalid": [
            "-m",
            *SLURM_LAUNCHER,
            *SIGNS,
            "trainer.max_epochs=-3",
            f"paths.log_dir={logs}",
            "sweep_name=invalid",
        ],
        "ddp": [
            "-m",
            *SLURM_LAUNCHER,
            "hydra.launcher.tasks_per_node=2",
            "trainer=ddp_sim",
            *SEG,
            f"paths.log_dir={logs}",
            "sweep_name=ddp",
        ],
    }
    once = {name: args for name, args in once.items() if name not in SLOW_SCENARIOS or name in wanted}
    procs = {name: _train(args, root / f"{name}.log") for name, args in {**commands, **once}.items()}
    in_process = {"reference": run(compose(root, [*SIGNS, f"paths.log_dir={logs}"], output="reference"))}
    stops, best, after_first = _Stops(logs / "sweeps" / "stops"), None, {}
    while True:
        assert time.monotonic() < deadline, (
            f"SLURM scenarios unfinished after {TIMEOUT} s: {_jobs(stops.sweep)}"
        )
        stops.step()
        _release_requeued()
        for (
            name,
            args,
        ) in commands.items():  # a sweep that ended with an unfinished job: the same command again
            if (
                name not in after_first
                and procs[name].poll() is not None
                and (name != "kills" or _slurm_jobs_gone(logs / "sweeps" / name))
            ):
                after_first[name] = {
                    "code": procs[name].returncode,
                    "jobs": _jobs(logs / "sweeps" / name),
                    "log": (root / f"{name}.log").read_text(),
                }
                procs[name] = _train(args, root / f"{name}_again.log")
        if best is None and procs["ddp"].poll() is not None:
            (ddp_job,) = _jobs(logs / "sweeps" / "ddp").values() or [{"run_dir": str(root / "missing")}]
            best = Path(ddp_job["run_dir"]) / "checkpoints" / "best.ckpt"
            evaluate = [*SEG, "train=false", f"ckpt_path='{best}'", f"paths.log_dir={root / 'eval'}"]
            procs["srun"] = subprocess.Popen(
                [
                    "srun",
                    "--nodes=1",
                    "--ntasks-per-node=2",
                    "-c1",
                    f"--job-name={slurm_cluster.TEST_JOB_NAME}",
                    "--time=10",
                    sys.executable,
                    str(REPO / "train.py"),
                    *evaluate,
                    "trainer=ddp_sim",
                ],
                cwd=REPO,
                env=_env(),
                stdout=(root / "srun.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            if best.is_file():
                in_process["single_eval"] = run(compose(root, evaluate, output="single_eval"))
        if (
            best is not None
            and len(after_first) == len(commands)
            and all(p.poll() is not None for p in procs.values())
        ):
            break
        time.sleep(0.5)
    print(f"SLURM scenarios took {time.monotonic() - started:.0f} s")
    codes = {name: p.returncode for name, p in procs.items()}
    codes |= {name: 0 if summary["status"] == "completed" else 1 for name, summary in in_process.items()}
    return {"root": root, "logs": logs, "codes": codes, "summaries": in_process, "first": after_first}


def _log_tail(runs, name: str) -> str:
    if name in runs["summaries"]:
        return str(runs["summaries"][name].get("error"))
    log = runs["root"] / (f"{name}_again.log" if name in runs["first"] else f"{name}.log")
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
    with (
        np.load(run / "qualitative.npz") as two,
        np.load(cluster_runs["root"] / "single_eval" / "qualitative.npz") as one,
    ):
        assert sorted(two.files) == sorted(one.files) and "worst_3_index" in one.files
        for key in one.files:
            np.testing.assert_array_equal(two[key], one[key], err_msg=key)


def test_ddp_under_srun_is_one_run_folder_and_equals_one_process(cluster_runs):
    assert cluster_runs["codes"]["srun"] == 0, _log_tail(cluster_runs, "srun")
    runs = list((cluster_runs["root"] / "eval" / "runs" / "unet_baseline").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("slurm-"), runs  # both ranks wrote into one folder
    assert _summary(runs[0])["world_size"] == 2
    assert _rows(runs[0] / "test_cases.csv") == _rows(cluster_runs["root"] / "single_eval" / "test_cases.csv")


def _same_numbers_as_the_reference(runs, run: Path, summary: dict) -> None:
    rows, reference = _rows(run / "metrics.csv"), _rows(runs["root"] / "reference" / "metrics.csv")
    assert (
        [r["epoch"] for r in rows]
        == [r["epoch"] for r in reference]
        == [str(e) for e in range(len(STOPS) + 1)]
    )
    for row, ref in zip(rows, reference):
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            assert float(row[key]) == pytest.approx(float(ref[key]), rel=1e-6), (row["epoch"], key)
    assert summary["test"] == pytest.approx(_summary(runs["root"] / "reference")["test"], rel=1e-6)


def _costs_add_up(summary: dict) -> None:
    """The record's cost covers every attempt: each interrupted one (its own wall time and start) and this
    one."""
    interruptions = summary["interruptions"]
    starts = [i["started_at"] for i in interruptions] + [summary["started_at"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(i["wall_time_s"] > 0 for i in interruptions)
    assert summary["wall_time_s"] == pytest.approx(
        sum(i["wall_time_s"] for i in interruptions) + summary["wall_time_this_attempt_s"],
        abs=0.02 * len(starts),
    )


def test_a_job_stopped_four_ways_with_wandb_is_recorded_interrupted_each_time_and_resumes_to_the_same_numbers(
    cluster_runs,
):
    assert cluster_runs["codes"]["reference"] == 0, _log_tail(cluster_runs, "reference")
    # scancel (at epoch 1) ends the job for good: the sweep command says which job and how, in lines, and
    # exits 1
    first = cluster_runs["first"]["stops"]
    (key,) = first["jobs"]
    assert first["code"] == 1, first["log"][-3000:]
    assert f"job {key} interrupted: terminated by SIGTERM" in first["log"], first["log"][-3000:]
    assert "Traceback" not in first["log"] and "ConnectionResetError" not in first["log"]
    assert first["jobs"][key]["status"] == "interrupted"
    # the same command again continues it (then requeued, USR1, USR2) to the end, in the same folder and W&B
    # run
    assert cluster_runs["codes"]["stops"] == 0, _log_tail(cluster_runs, "stops")
    (job,) = _jobs(cluster_runs["logs"] / "sweeps" / "stops").values()
    assert job["status"] == "completed"
    run = Path(job["run_dir"])
    summary = _summary(run)
    assert summary["status"] == "completed"
    assert summary["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
    interruptions = summary["interruptions"]
    assert [i["status"] for i in interruptions] == ["interrupted"] * len(STOPS)
    assert [i["epochs"] for i in interruptions] == [
        1,
        2,
        3,
        4,
    ]  # each attempt resumed where the last one stopped
    causes = [
        "terminated by SIGTERM",
        "terminated by SIGTERM",
        "SIGUSR1 (SLURM requeue signal): SLURM job",
        "SIGUSR2 (SLURM preemption or time limit): requeued by submitit",
    ]  # scancel, requeue, USR1, USR2
    for interruption, cause in zip(interruptions, causes):
        assert cause in interruption["cause"], (cause, interruption["cause"])
    assert not list(run.glob("hpc_ckpt_*.ckpt"))  # Lightning's mid-epoch checkpoint is not used
    _costs_add_up(summary)
    # one W&B run throughout: 5 attempts, 5 offline folders of the one run id the folder records
    wandb_id = (
        (run / "wandb_run_id.txt").read_text().strip() if (run / "wandb_run_id.txt").is_file() else None
    )
    assert summary["wandb"]["id"] == wandb_id or wandb_id is None
    assert len(list((run / "wandb").glob(f"offline-run-*-{summary['wandb']['id']}"))) == len(STOPS) + 1
    assert len(list((run / "wandb").glob("offline-run-*"))) == len(STOPS) + 1
    _same_numbers_as_the_reference(cluster_runs, run, summary)


@pytest.mark.slow  # ~5 requeues of ~1.5 min on 2 busy cores
def test_a_job_longer_than_its_time_limit_completes_across_requeues_with_every_attempt_recorded(cluster_runs):
    log = (cluster_runs["root"] / "limit.log").read_text()
    assert "using signal_delay_s=40" in log  # the preset's 120 s would leave a 2-minute job no time to train
    assert cluster_runs["codes"]["limit"] == 0, _log_tail(cluster_runs, "limit")
    (job,) = _jobs(cluster_runs["logs"] / "sweeps" / "limit").values()
    assert job["status"] == "completed"
    run = Path(job["run_dir"])
    summary = _summary(run)
    assert summary["status"] == "completed"
    interruptions = summary["interruptions"]
    assert len(interruptions) >= 1 and summary["slurm"]["restart_count"] == len(interruptions)
    for interruption in interruptions:
        assert "SIGUSR2 (SLURM preemption or time limit): requeued by submitit" in interruption["cause"]
    epochs = [i["epochs"] for i in interruptions]
    assert epochs == sorted(epochs) and epochs[-1] < len(STOPS) + 1
    _costs_add_up(summary)
    _same_numbers_as_the_reference(cluster_runs, run, summary)


def test_an_invalid_value_in_a_submitit_sweep_is_that_jobs_one_line_error(cluster_runs):
    log = (cluster_runs["root"] / "invalid.log").read_text()
    assert cluster_runs["codes"]["invalid"] == 1, log[-3000:]
    ((key, job),) = _jobs(cluster_runs["logs"] / "sweeps" / "invalid").items()
    assert job["status"] == "failed" and job["error"].startswith(
        "ConfigError: trainer.max_epochs=-3 is not valid"
    )
    assert f"error: job {key} failed: ConfigError: trainer.max_epochs=-3 is not valid" in log
    assert "Traceback" not in log
    job_logs = "".join(p.read_text() for p in (cluster_runs["logs"] / "sweeps" / "invalid").rglob("*_log.*"))
    assert job_logs and "FileNotFoundError" not in job_logs and "Logging error" not in job_logs
    assert not Path(job["run_dir"]).exists()  # a refused run leaves no folder


@pytest.mark.slow  # 4 DDP job starts, and submitit notices a job that died without a result only after ~1 min
def test_a_ddp_job_whose_rank_0_or_rank_1_is_killed_is_recorded_and_resumes(cluster_runs):
    first = cluster_runs["first"]["kills"]
    assert first["code"] == 1, first["log"][-3000:]
    assert "Traceback" not in first["log"]
    by_rank = {
        next(o for o in job["overrides"] if o.startswith("+callbacks.kill.rank=")): job
        for job in first["jobs"].values()
    }
    killed_0, killed_1 = by_rank["+callbacks.kill.rank=0"], by_rank["+callbacks.kill.rank=1"]
    assert "running" not in [job["status"] for job in first["jobs"].values()], first["jobs"]
    assert killed_0["status"] == "interrupted" and "ended without recording an end" in killed_0["error"]
    assert killed_1["status"] == "failed", killed_1
    # the same command again resumes both from their last.ckpt to the end
    assert cluster_runs["codes"]["kills"] == 0, _log_tail(cluster_runs, "kills")
    jobs = _jobs(cluster_runs["logs"] / "sweeps" / "kills")
    assert [job["status"] for job in jobs.values()] == ["completed", "completed"], jobs
    for job, status in ((killed_0, "interrupted"), (killed_1, "failed")):
        summary = _summary(Path(job["run_dir"]))
        assert summary["status"] == "completed" and summary["epochs"] == 2 and summary["world_size"] == 2
        assert summary["resumed_from"] == str(Path(job["run_dir"]) / "checkpoints" / "last.ckpt")
        assert [(i["status"], i["epochs"]) for i in summary["interruptions"]] == [(status, 1)], summary
