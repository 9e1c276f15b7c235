"""``visionlab-bench`` runs every loop it reports on the CPU and writes its figures with their provenance; a
GPU run is asked for explicitly and fails clearly where there is none. Speeds are not asserted here (the
benchmark itself measures them)."""

import json

import pytest
import torch

from visionlab.benchmark import pipeline as bench
from visionlab.cli.bench import main as bench_main


def test_cpu_bench_runs_every_loop_and_writes_json(tmp_path, capsys):
    """Through the console script's ``main``: exit code 0 (not the result dict, which ``sys.exit`` would print
    and turn into exit 1), the table on stdout, the figures as data only in the --json file."""
    out = tmp_path / "bench.json"
    code = bench_main(
        [
            "--tasks",
            "cnn",
            "cnn_best",
            "unet",
            "--backends",
            "batched",
            "--precision",
            "fp32",
            "--batch-size",
            "32",
            "--steps",
            "2",
            "--unet-steps",
            "1",
            "--warmup",
            "1",
            "--unet-features",
            "8",
            "--unet-batch",
            "2",
            "--unet-size",
            "64",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "| data | backend | precision | bare img/s |" in printed.out and f"wrote {out}" in printed.out
    assert "'loops'" not in printed.out + printed.err and '"loops"' not in printed.out + printed.err
    saved = json.loads(out.read_text())
    assert [row["task"] for row in saved["loops"]] == ["cnn", "cnn_best", "unet"]
    for row in saved["loops"]:
        assert row["backend"] == "batched" and row["precision"] == "fp32"
        assert row["bare_img_s"] > 0 and row["full_img_s"] > 0
        assert row["full_over_bare"] == pytest.approx(row["full_img_s"] / row["bare_img_s"])
    assert saved["augmentation_img_s"]["batched"] > 0
    env = saved["environment"]
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and "cuda" in env and env["date"]
    assert set(env["git"]) == {"commit", "dirty"}


def test_device_defaults_and_a_missing_gpu(capsys):
    cpu = bench.parse_args([])
    assert (cpu.tasks, cpu.precision, cpu.backends) == (
        ["cnn", "unet", "epoch"],
        ["fp32", "bf16"],
        ["batched", "albumentations"],
    )
    assert (cpu.unet_features, cpu.unet_batch) == (32, 4)
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "tpu"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exit_info:
            bench.parse_args(["--device", "cuda"])
        assert exit_info.value.code == 2 and "sees no GPU" in capsys.readouterr().err
    else:
        gpu = bench.parse_args(["--device", "cuda"])
        assert (gpu.tasks, gpu.precision, gpu.backends) == (
            ["cnn", "cnn_best", "unet"],
            ["bf16"],
            ["batched"],
        )
        assert (gpu.unet_features, gpu.unet_batch) == (64, 16)


# the default suite keeps the CPU bench run itself (test_cpu_bench_runs_every_loop_and_writes_json)
@pytest.mark.slow
def test_paired_design_reports_per_pair_ratios(tmp_path):
    result = bench.run_bench(
        [
            "--tasks",
            "cnn",
            "--paired",
            "--backends",
            "batched",
            "--precision",
            "fp32",
            "--batch-size",
            "32",
            "--steps",
            "2",
            "--warmup",
            "1",
        ]
    )
    (row,) = result["loops"]
    assert row["design"] == "paired" and row["bare_img_s"] > 0 and row["full_img_s"] > 0
    assert len(row["repeats"]["full_over_bare"]) == 1 and row["full_over_bare"] > 0
