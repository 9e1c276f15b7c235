"""End-to-end segmentation runs on tiny U-Nets and 64×64 synthetic data: presets, run record, W&B, bad
input."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import CONF, compose, finished_wandb_run, run_if, shared_data_dir
from seg_helpers import TINY_SEG, f1_iou
from visionlab.cli.report import main as report_main
from visionlab.config.errors import DataError
from visionlab.networks.unet import UNet
from visionlab.run.execute import run

# the binary seed-study presets (unet_camvid, the K-class CamVid preset, is tested in
# test_segmentation_multiclass)
UNET_EXPERIMENTS = sorted(
    p.stem for p in (CONF / "experiment").glob("unet_*.yaml") if p.stem != "unet_camvid"
)


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_the_three_seed_study_presets_exist():
    assert UNET_EXPERIMENTS == ["unet_baseline", "unet_elu", "unet_nearest"]


@pytest.mark.parametrize("experiment", UNET_EXPERIMENTS)
def test_every_unet_experiment_composes_and_trains_one_batch(tmp_path, experiment):
    cfg = compose(tmp_path, [f"experiment={experiment}", *TINY_SEG, "logger=none", "+trainer.fast_dev_run=1"])
    assert cfg.experiment_name == experiment and cfg.monitor == "val/f1" and cfg.monitor_mode == "max"
    expected = {
        "unet_baseline": ("bilinear", "relu"),
        "unet_nearest": ("nearest", "relu"),
        "unet_elu": ("bilinear", "elu"),
    }[experiment]
    assert (cfg.model.net.up_mode, cfg.model.net.activation) == expected
    summary = run(cfg)
    assert summary["status"] == "completed" and summary["task"] == "segmentation"
    assert summary["n_params"] == sum(
        p.numel() for p in UNet(1, 1, 4, 3, *expected, batch_norm=True).parameters()
    )
    assert summary["test"]["test/cases"] == 4  # fast_dev_run: one test batch of 4


def test_the_variants_share_the_baseline_recipe_and_change_only_their_delta(tmp_path):
    from omegaconf import OmegaConf

    def flat(experiment):
        cfg = OmegaConf.to_container(compose(tmp_path, [f"experiment={experiment}"]), resolve=False)
        cfg.pop("experiment_name")
        return cfg

    base = flat("unet_baseline")
    assert base["model"]["net"]["batch_norm"] is True and base["model"]["loss"] == "bce_dice"
    assert base["model"]["scheduler"]["_target_"].endswith("warmup_cosine")
    assert (
        base["trainer"]["gradient_clip_val"] > 0
        and base["callbacks"]["early_stopping"]["monitor"] == "${monitor}"
    )
    # a step budget that does not shrink with the data, and the intensity shift between scanners (unet_recipe
    # study)
    assert base["data"]["samples_per_epoch"] == 160 and base["data"]["train_repeats"] == 1
    assert base["data"]["gamma"] > 0 and base["data"]["p_gamma"] > 0 and base["data"]["brightness"] >= 0.2
    for experiment, delta in (("unet_nearest", {"up_mode": "nearest"}), ("unet_elu", {"activation": "elu"})):
        variant = flat(experiment)
        assert {k: v for k, v in variant["model"].items() if k != "net" and base["model"][k] != v} == {}
        assert {k: v for k, v in variant["model"]["net"].items() if base["model"]["net"][k] != v} == delta
        assert {**variant, "model": None} == {**base, "model": None}


def test_run_record_per_case_table_and_wandb_offline_agree(tmp_path):
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_elu",
            *TINY_SEG,
            "seed=3",
            "model.media_every_n_epochs=1",
            "model.loss=bce_dice",
            "model.optimizer.lr=3e-3",
        ],
    )
    summary = run(cfg)
    run_dir = tmp_path / "run"
    rows = read_rows(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for key in (
        "train/loss",
        "train/f1",
        "val/loss",
        "val/f1",
        "val/iou",
        "val/f1_best",
        "val/f1_bg",
        "val/f1_macro",
    ):
        assert all(r[key] != "" for r in rows), key
    for r in rows:  # the checkpoint score not dominated by the easy class: the mean of both classes' F1
        assert float(r["val/f1_macro"]) == pytest.approx(
            (float(r["val/f1"]) + float(r["val/f1_bg"])) / 2, rel=1e-5
        )
    assert float(rows[1]["val/f1_best"]) == max(float(r["val/f1"]) for r in rows)
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["status"] == "completed" and saved == json.loads(json.dumps(summary, default=str))

    cases = read_rows(run_dir / "test_cases.csv")
    assert list(cases[0]) == ["case", "f1", "iou", "f1_bg", "iou_bg", "f1_trivial"]
    assert [int(c["case"]) for c in cases] == list(range(6))
    f1, iou, f1_bg, iou_bg, trivial = (
        np.array([float(c[k]) for c in cases]) for k in ("f1", "iou", "f1_bg", "iou_bg", "f1_trivial")
    )
    test = saved["test"]  # one name per quantity: the logged test metrics, nothing renamed
    assert set(test) == {
        "test/loss",
        "test/cases",
        "test/f1",
        "test/f1_std",
        "test/f1_min",
        "test/iou",
        "test/f1_bg",
        "test/f1_bg_std",
        "test/f1_bg_min",
        "test/iou_bg",
        "test/f1_trivial",
    }
    assert test["test/cases"] == 6
    assert test["test/f1_bg"] == pytest.approx(f1_bg.mean(), rel=1e-5)
    assert test["test/f1_bg_std"] == pytest.approx(f1_bg.std(), rel=1e-4, abs=1e-6)
    assert test["test/f1_bg_min"] == pytest.approx(f1_bg.min(), rel=1e-5)
    assert test["test/iou_bg"] == pytest.approx(iou_bg.mean(), rel=1e-5)
    assert test["test/f1_trivial"] == pytest.approx(trivial.mean(), rel=1e-5)
    from visionlab.data.segmentation.synthetic import make_synthetic_seg

    masks = make_synthetic_seg(n_train=8, n_val=4, n_test=6, size=64, seed=0)["y_test"]
    expected = [f1_iou(m, np.ones_like(m))[0] for m in masks]  # all-foreground on the same cases
    np.testing.assert_allclose(trivial, expected, rtol=1e-5)
    assert saved["health"]["status"] in ("ok", "stuck") and saved["health"]["collapsed_epochs"] <= 2
    assert test["test/f1"] == pytest.approx(f1.mean(), rel=1e-5)
    assert test["test/f1_std"] == pytest.approx(f1.std(), rel=1e-4, abs=1e-6)
    assert test["test/f1_min"] == pytest.approx(f1.min(), rel=1e-5)
    assert test["test/iou"] == pytest.approx(iou.mean(), rel=1e-5)
    assert saved["segmentation"]["worst_case"] == int(f1.argmin())
    assert not any(
        "/" in key for key in saved["segmentation"]
    )  # no second copy of a metric under another name

    q = np.load(run_dir / "qualitative.npz")
    # the three worst cases over all test batches, worst first (ties: the lower case index)
    worst_first = np.lexsort((np.arange(len(f1)), np.array([float(c["f1"]) for c in cases])))
    assert [int(q[f"{n}_index"]) for n in ("worst", "worst_2", "worst_3")] == worst_first[:3].tolist()
    assert int(q["fixed_index"]) == 0 and int(q["best_index"]) == int(f1.argmax())
    for name in ("fixed", "best", "worst", "worst_2", "worst_3"):
        assert q[f"{name}_image"].shape == (64, 64) and q[f"{name}_image"].dtype == np.uint8
        assert set(np.unique(q[f"{name}_mask"])) <= {0, 1} and set(np.unique(q[f"{name}_pred"])) <= {0, 1}
        case = int(q[f"{name}_index"])
        assert f1_iou(q[f"{name}_mask"], q[f"{name}_pred"]) == pytest.approx((f1[case], iou[case]), rel=1e-5)
    from visionlab.data.segmentation.synthetic import make_case

    image, mask = make_case(0, "test", 0, 64)
    np.testing.assert_array_equal(q["fixed_image"], image)
    np.testing.assert_array_equal(q["fixed_mask"], mask)

    wb = finished_wandb_run(run_dir)
    logged_val = [h["val/f1"] for h in wb["history"] if "val/f1" in h]
    assert logged_val == pytest.approx([float(r["val/f1"]) for r in rows])
    logged_train = [h["train/f1"] for h in wb["history"] if "train/f1" in h]
    assert logged_train == pytest.approx([float(r["train/f1"]) for r in rows])
    for key, value in test.items():  # W&B holds the same test metrics under the same names
        assert wb["summary"][key] == pytest.approx(value, rel=1e-6), key
    wb_dir = next((run_dir / "wandb").glob("offline-run-*")) / "files"
    overlays = [h for h in wb["history"] if "val/predictions/_type" in h]
    assert len(overlays) == 2  # every epoch with media_every_n_epochs=1
    assert all(h["val/predictions/count"] == 4 and len(h["val/predictions/all_masks"]) == 4 for h in overlays)
    assert set(overlays[0]["val/predictions/all_masks"][0]) == {"ground_truth", "prediction"}
    assert overlays[1]["val/predictions/captions"][0].startswith("val case 0, epoch 1: F1 ")
    worst = next(h for h in wb["history"] if "test/worst_case/_type" in h)
    assert worst["test/worst_case/_type"] == "image-file"
    from PIL import Image

    for layer, key in (("ground_truth", "worst_mask"), ("prediction", "worst_pred")):
        logged = np.array(Image.open(wb_dir / worst[f"test/worst_case/masks/{layer}/path"]))
        np.testing.assert_array_equal(logged, q[key])  # the mask image W&B holds is the recorded one
    assert any(h.get("test/cases_table/nrows") == 6 for h in wb["history"])


def test_image_size_not_divisible_is_a_clear_error_and_recorded(tmp_path):
    cfg = compose(tmp_path, ["experiment=unet_baseline", *TINY_SEG, "data.image_size=62", "logger=none"])
    with pytest.raises(
        DataError,
        match=r"images are 62×62, but a U-Net with model.net.depth=3 needs sides divisible "
        r"by 2\^\(depth-1\)=4",
    ):
        run(cfg)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["status"] == "failed" and "data.image_size" in saved["error"]


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_baseline",
            *TINY_SEG,
            "logger=none",
            "+callbacks.poison._target_=helpers.PoisonWeightsAtEpoch",
            "+callbacks.poison.epoch=1",
        ],
    )
    from visionlab.config.errors import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match="Training loss became nan at epoch 1"):
        run(cfg)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    health = json.loads((tmp_path / "run" / "summary.json").read_text())["health"]
    assert health["status"] == "diverged" and health["epoch"] == 1 and "became nan" in health["reason"]


def test_a_run_that_predicts_one_class_is_recorded_as_stuck(tmp_path):
    """A threshold near 0 marks every pixel foreground: val/f1 is the trivial score, val/f1_bg is 0 →
    stuck."""
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_baseline",
            *TINY_SEG,
            "logger=none",
            "trainer.max_epochs=1",
            "model.threshold=1e-6",
        ],
    )
    summary = run(cfg)
    assert summary["status"] == "completed"
    assert summary["best"]["val/f1_bg"] == 0.0
    assert summary["test"]["test/f1"] == pytest.approx(summary["test"]["test/f1_trivial"], rel=1e-5)
    health = summary["health"]
    assert health["status"] == "stuck" and health["epoch"] == 0 and health["collapsed_epochs"] == 1
    assert "val/f1_bg = 0.0000" in health["reason"]


@run_if(shared_data="isbi2012")
def test_isbi_file_trains_for_a_few_steps(tmp_path):
    data_dir = shared_data_dir() / "isbi2012"
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_baseline",
            f"data.data_dir={data_dir}",
            *(o for o in TINY_SEG if not o.startswith(("data=", "data.n_"))),
            "data.image_size=256",
            "logger=none",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
            "+trainer.limit_val_batches=1",
        ],
    )
    summary = run(cfg)
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert "isbi2012_membrane_256.npz" in summary["data"]
    assert summary["data"].endswith(
        "(splits made from train: 16 train / 6 val / 6 test; contiguous blocks of the "
        "stack: train 0–15, val 17–22, test 24–29, unused gap 16, 23; "
        "data.split_mode=contiguous)"
    )
    assert summary["test"]["test/cases"] == 6  # 30 labelled slices → 16 / gap / 6 / gap / 6
    cases = read_rows(tmp_path / "run" / "test_cases.csv")
    assert len(cases) == 6
    assert np.load(tmp_path / "run" / "qualitative.npz")["fixed_image"].shape == (256, 256)


@pytest.mark.slow
def test_synthetic_set_is_learnable(tmp_path):
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_baseline",
            *TINY_SEG,
            "data.n_train=32",
            "model.net.features_start=8",
            "trainer.max_epochs=15",
            "model.optimizer.lr=3e-3",
            "logger=none",
        ],
    )
    summary = run(cfg)
    # predicting all foreground scores F1 ≈ 0.65 on this set (49 % foreground): well above that means learning
    assert summary["best"]["val/f1"] > 0.78
    assert summary["test"]["test/f1"] > 0.75


def test_flip_tta_evaluates_a_trained_checkpoint_and_is_recorded(tmp_path):
    """The same checkpoint tested without and with flip TTA: each record says which, and its per-case table is
    the one it reports."""
    common = ["experiment=unet_baseline", *TINY_SEG, "logger=none"]
    run(
        compose(
            tmp_path,
            [*common, "seed=3", "model.loss=bce_dice", "model.optimizer.lr=1e-2", "trainer.max_epochs=8"],
            output="trained",
        )
    )
    ckpt = tmp_path / "trained" / "checkpoints" / "best.ckpt"
    results = {}
    for tta in ("none", "flips"):
        summary = run(
            compose(
                tmp_path,
                [*common, f"ckpt_path={ckpt}", f"model.tta={tta}"],
                config_name="eval",
                output=f"eval_{tta}",
            )
        )
        rows = read_rows(tmp_path / f"eval_{tta}" / "test_cases.csv")
        assert summary["test"]["test/f1"] == pytest.approx(np.mean([float(r["f1"]) for r in rows]), rel=1e-5)
        results[tta] = summary
    assert results["none"]["segmentation"]["test_time_augmentation"] == "none"
    assert results["flips"]["segmentation"]["test_time_augmentation"].startswith(
        "flips: identity, horizontal"
    )
    assert 0 < results["none"]["test"]["test/f1"] != results["flips"]["test"]["test/f1"], results
    # a page of evaluations says what they are, not "metrics.csv missing" or "trained 0 epochs"
    assert (
        report_main(
            [
                str(tmp_path / "eval_none"),
                str(tmp_path / "eval_flips"),
                "--out",
                str(tmp_path / "page"),
                "--no-figures",
            ]
        )
        == 0
    )
    page = (tmp_path / "page" / "REPORT.md").read_text()
    assert "unet_baseline: 2 evaluations of a trained checkpoint (`train=false`)" in page
    assert "| evaluation of a checkpoint (2 of 2) |" in page
    assert "metrics.csv missing" not in page and "trained 0 epochs" not in page and "no curve" not in page


def test_the_kept_worst_cases_are_those_one_process_keeps_whatever_the_ranks():
    """Under DDP each rank keeps the worst of its share; merged, they are the three worst of all cases, ties
    to the lower case index, as one process that scores every case keeps them."""
    from visionlab.tasks.segmentation.module import _merge_kept_cases

    f1 = [0.9, 0.2, 0.5, 0.2, 0.7, 0.1, 0.5]

    def case(i):
        return {"index": i, "f1": f1[i]}

    def worst_of(share):
        return sorted((case(i) for i in share), key=lambda c: (c["f1"], c["index"]))[:3]

    one = _merge_kept_cases([{"fixed": case(0), "best": case(0)}], [worst_of(range(7))])
    assert [one[n]["index"] for n in ("worst", "worst_2", "worst_3")] == [5, 1, 3]
    for shares in ([range(0, 7, 2), range(1, 7, 2)], [range(4), range(4, 7)], [[6], [5, 4], [3, 2, 1, 0]]):
        per_rank = [{"fixed": case(0)} if 0 in share else {} for share in shares]
        for kept, share in zip(per_rank, shares):
            kept["best"] = min((case(i) for i in share), key=lambda c: (-c["f1"], c["index"]))
        assert _merge_kept_cases(per_rank, [worst_of(share) for share in shares]) == one, shares
    two = _merge_kept_cases([{}], [worst_of([4, 6])])  # fewer cases than three: as many as there are
    assert [two[n]["index"] for n in ("worst", "worst_2")] == [6, 4] and "worst_3" not in two
