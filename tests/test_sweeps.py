"""Multiruns: the sweep index, skipping complete jobs on a re-run, failed jobs recorded while others go on."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO

TINY = [
    "data.tracks_per_class=3",
    "data.frames_per_track=3",
    "data.test_tracks_per_class=1",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def multirun(tmp_path: Path, args: list[str], timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *args, *TINY, f"paths.log_dir={tmp_path}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def index(tmp_path: Path, sweep: str) -> dict:
    return json.loads((tmp_path / "sweeps" / sweep / "sweep_index.json").read_text())["jobs"]


def test_rerun_skips_complete_jobs_reruns_the_rest_and_records_failures(tmp_path):
    first = multirun(tmp_path, ["sweep_name=s", "seed=1,2", "model.net.activation=relu,nosuch"])
    assert first.returncode != 0  # the sweep reports that a job failed ...
    jobs = index(tmp_path, "s")
    assert len(jobs) == 4  # ... but every job ran
    failed = {k: j for k, j in jobs.items() if j["status"] == "failed"}
    done = {k: j for k, j in jobs.items() if j["status"] == "completed"}
    assert len(failed) == 2 and all("nosuch" in j["error"] for j in failed.values())
    assert len(done) == 2 and all(0 <= j["metrics"]["val/acc"] <= 1 for j in done.values())
    for key, job in done.items():
        summary = json.loads((Path(job["run_dir"]) / "summary.json").read_text())
        assert job["metrics"]["val/acc"] == summary["best"]["val/acc"]
        assert key == Path(job["run_dir"]).name and "seed=" in key

    # simulate an interrupted job: its record is incomplete, so the re-run trains it again
    victim = Path(next(iter(done.values()))["run_dir"])
    record = json.loads((victim / "summary.json").read_text())
    (victim / "summary.json").write_text(json.dumps({**record, "status": "running"}))
    second = multirun(tmp_path, ["sweep_name=s", "seed=1,2", "model.net.activation=relu"])
    assert second.returncode == 0, second.stderr[-2000:]
    jobs = index(tmp_path, "s")
    assert sum(j.get("skipped", False) for j in jobs.values()) == 1
    assert json.loads((victim / "summary.json").read_text())["status"] == "completed"
    assert second.stdout.count("completed:") == 1  # only the interrupted job trained again


# two sweep processes at once (~20 s of 2 cores); the claim lock is also exercised by the SLURM DDP sweep
@pytest.mark.slow
def test_the_same_sweep_started_twice_at_once_runs_each_job_once_in_its_own_folder(tmp_path):
    """Two processes, one sweep: each job is claimed by one of them; `a/b` and `a_b` are two jobs, two
    folders."""
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "sweep_name=twin",
        "+note=a/b,a_b",
        *TINY,
        f"paths.log_dir={tmp_path}",
    ]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=400) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], (
        outputs[0][1][-2000:] + outputs[1][1][-2000:]
    )
    assert sum(stdout.count("completed:") for stdout, _ in outputs) == 2  # each job trained once in all
    jobs = index(tmp_path, "twin")
    assert len(jobs) == 2 and all(job["status"] == "completed" for job in jobs.values())
    notes = {
        yaml.safe_load((Path(job["run_dir"]) / "config.yaml").read_text())["note"] for job in jobs.values()
    }
    assert notes == {"a/b", "a_b"}


def test_job_folders_are_one_to_one_with_jobs():
    from visionlab.cluster.run_folders import job_dir

    dirnames = [
        "+note=a/b",
        "+note=a_b",
        "data.data_dir=/d/one",
        "data.data_dir=/d/two",
        "threads=1",
        "threads=2",
        "trainer.devices=1",
        "trainer.devices=2",
        "x=" + "a" * 200,
        "x=" + "a" * 199 + "b",
        "x=a__0123456789",
    ]
    names = [job_dir(d) for d in dirnames]
    assert len(set(names)) == len(names) and not any("/" in name for name in names)
    assert job_dir("seed=1,experiment=cnn_sgd") == "experiment=cnn_sgd,seed=1"  # plain ones stay readable


def test_job_folder_names_show_a_path_by_its_last_folder_not_the_machine_it_lay_on():
    """A study's job folders are committed; a data path must not carry the author's home folder into them."""
    from visionlab.cluster.run_folders import job_dir

    here = job_dir("experiment=unet_camvid,seed=2,data.data_dir=/home/ana/private/camvid")
    there = job_dir("experiment=unet_camvid,seed=2,data.data_dir=/scratch/other/camvid/")
    assert here.startswith("experiment=unet_camvid,seed=2,data.data_dir=camvid__")
    assert there.startswith("experiment=unet_camvid,seed=2,data.data_dir=camvid__")
    assert "home" not in here and "ana" not in here and "private" not in here
    assert here != there  # the hash of the full overrides still tells them apart


def test_a_sweep_started_before_the_folder_names_changed_resumes_its_jobs_found_by_their_hash(tmp_path):
    from visionlab.cluster.run_folders import job_dir

    overrides = "experiment=unet_camvid,seed=2,data.data_dir=/home/ana/private/camvid"
    today = job_dir(overrides, str(tmp_path))
    assert today == job_dir(overrides)  # nothing there yet: today's name
    digest = today.rpartition("__")[2]
    earlier = tmp_path / f"seed=2,experiment=unet_camvid,data.data_dir=_home_ana_private_camvid__{digest}"
    earlier.mkdir()
    (tmp_path / f"experiment=other__{'0' * 10}").mkdir()
    assert job_dir(overrides, str(tmp_path)) == earlier.name  # the earlier folder of the same job
    (tmp_path / today).mkdir()
    assert job_dir(overrides, str(tmp_path)) == today  # today's folder, once it exists, wins
    assert job_dir("experiment=cnn_sgd,seed=1", str(tmp_path)) == "experiment=cnn_sgd,seed=1"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["local_parallel", "submitit_local"])
def test_launchers_really_run_the_jobs(tmp_path, launcher):
    result = multirun(tmp_path, [f"hydra/launcher={launcher}", "sweep_name=l", "seed=1,2"], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = index(tmp_path, "l")
    assert [j["status"] for j in jobs.values()] == ["completed", "completed"]


@pytest.mark.slow
def test_optuna_sweeper_runs_three_trials(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason="optional extra: pip install -e '.[optuna]'"
    )
    result = multirun(tmp_path, ["+sweep=cnn_optuna", "hydra.sweeper.n_trials=3"], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    results = (tmp_path / "sweeps" / "cnn_optuna" / "optimization_results.yaml").read_text()
    jobs = index(tmp_path, "cnn_optuna")
    assert len(jobs) == 3
    best = max(j["metrics"]["val/acc"] for j in jobs.values())
    assert f"best_value: {best}" in results
