"""Segmentation with K classes (issue 32): index and palette masks, ignore_index, softmax loss, per-class
scores checked against a NumPy reference, one-line refusals of bad masks, crops, stuck classes and the
report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import compose, run_if, shared_data_dir
from seg_helpers import TINY_SEG, save_png
from visionlab.config.errors import ConfigError, DataError
from visionlab.data.segmentation.crops import RandomCrops
from visionlab.data.segmentation.masks import MaskSpec, mask_spec
from visionlab.data.segmentation.sources import load_segmentation
from visionlab.data.segmentation.synthetic import make_synthetic_multiclass
from visionlab.run.execute import run

K4 = [
    "data.num_classes=4",
    "data.class_names=[background,disc,square,triangle]",
    "model.loss=ce_dice",
    "monitor=val/miou",
    "logger=csv",
]
PALETTE4 = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def numpy_scores(masks: np.ndarray, preds: np.ndarray, k: int, ignore: int | None):
    """Independent reference: per-class IoU/Dice over all pixels, mIoU over present classes, pixel accuracy,
    and per image the same (NaN for a class absent from both)."""

    def scores(m, p):
        valid = m != ignore if ignore is not None else np.ones(m.shape, bool)
        m, p = m[valid].astype(np.int64), p[valid].astype(np.int64)
        iou, dice = np.full(k, np.nan), np.full(k, np.nan)
        for c in range(k):
            tp = np.sum((m == c) & (p == c))
            fp = np.sum((m != c) & (p == c))
            fn = np.sum((m == c) & (p != c))
            if tp + fp + fn:
                iou[c], dice[c] = tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)
        return iou, dice, np.nanmean(iou), np.mean(m == p)

    split = scores(masks.reshape(-1), preds.reshape(-1))
    per_image = [scores(m.reshape(-1), p.reshape(-1)) for m, p in zip(masks, preds)]
    return split, per_image


@pytest.fixture(scope="module")
def k4_run(tmp_path_factory):
    """One tiny K=4 run on the synthetic shapes (shape outlines ignored as 255), 3 epochs, class weights
    auto."""
    tmp = tmp_path_factory.mktemp("k4")
    cfg = compose(
        tmp,
        [
            "experiment=unet_baseline",
            *TINY_SEG,
            *K4,
            "data.ignore_index=255",
            "trainer.max_epochs=3",
            "model.class_weights=auto",
            "model.net.features_start=8",
            "seed=5",
            "data.n_train=12",
            "model.optimizer.lr=1e-2",
            "model.scheduler.warmup_epochs=0",
            "data.augment=false",
        ],
    )
    summary = run(cfg)
    return tmp / "run", summary, cfg


def test_k4_per_class_scores_equal_a_numpy_reference_from_the_saved_predictions(k4_run):
    run_dir, summary, cfg = k4_run
    assert summary["status"] == "completed" and summary["task"] == "multiclass_segmentation"
    from hydra.utils import instantiate

    from visionlab.run.checkpoints import load_checkpoint

    model = instantiate(cfg.model)
    state = load_checkpoint(str(run_dir / "checkpoints" / "best.ckpt"))["state_dict"]
    model.load_state_dict(state)
    model.eval()
    data = make_synthetic_multiclass(
        n_train=12, n_val=4, n_test=6, size=64, seed=0, num_classes=4, ignore_index=255
    )
    with torch.no_grad():
        preds = model(torch.from_numpy(data["x_test"])).argmax(1).numpy().astype(np.uint8)
    masks = data["y_test"]
    (iou, dice, miou, acc), per_image = numpy_scores(masks, preds, 4, 255)
    test = summary["test"]
    for c in range(4):
        if np.isnan(iou[c]):
            assert f"test/iou_c{c}" not in test
        else:
            assert test[f"test/iou_c{c}"] == pytest.approx(iou[c], abs=1e-6)
            assert test[f"test/dice_c{c}"] == pytest.approx(dice[c], abs=1e-6)
    assert test["test/miou"] == pytest.approx(miou, abs=1e-6)
    assert test["test/pixel_acc"] == pytest.approx(acc, abs=1e-6)
    rows = read_rows(run_dir / "test_cases.csv")
    assert list(rows[0])[:3] == ["case", "miou", "pixel_acc"] and len(rows) == 6
    for row, (image_iou, image_dice, image_miou, image_acc) in zip(rows, per_image):
        assert float(row["miou"]) == pytest.approx(image_miou, abs=1e-9)
        assert float(row["pixel_acc"]) == pytest.approx(image_acc, abs=1e-9)
        for c in range(4):
            np.testing.assert_allclose(float(row[f"iou_c{c}"]), image_iou[c], atol=1e-9, equal_nan=True)
            np.testing.assert_allclose(float(row[f"dice_c{c}"]), image_dice[c], atol=1e-9, equal_nan=True)
    q = np.load(run_dir / "qualitative.npz")
    for name in ("fixed", "best", "worst"):  # the kept predictions are the model's, case for case
        np.testing.assert_array_equal(q[f"{name}_pred"], preds[int(q[f"{name}_index"])])
        np.testing.assert_array_equal(q[f"{name}_mask"], masks[int(q[f"{name}_index"])])
    worst = int(np.nanargmin([p[2] for p in per_image]))
    assert int(q["worst_index"]) == worst == summary["multiclass_segmentation"]["worst_case"]
    confusion = np.loadtxt(run_dir / "confusion_matrix.csv", delimiter=",", dtype=np.int64)
    valid = masks != 255
    expected = np.zeros((4, 4), np.int64)
    np.add.at(expected, (masks[valid].astype(int), preds[valid].astype(int)), 1)
    np.testing.assert_array_equal(confusion, expected)
    weights = summary["multiclass_segmentation"]["class_weights"]
    counts = np.bincount(data["y_train"].reshape(-1), minlength=256)[:4]  # train split of the synthetic set
    freq = counts / counts.sum()
    np.testing.assert_allclose(weights, np.median(freq) / freq, rtol=1e-5)
    metrics = read_rows(run_dir / "metrics.csv")
    assert all(r["val/miou"] != "" and r["train/miou"] != "" for r in metrics) and len(metrics) == 3
    assert "stuck_classes" in summary["health"]


def test_the_report_shows_per_class_tables_confusion_and_palette_overlays(k4_run, tmp_path):
    from visionlab.cli.report import main as report_main

    run_dir = k4_run[0]
    out = tmp_path / "report"
    assert report_main([str(run_dir), "--out", str(out)]) in (0, None)
    text = (out / "REPORT.md").read_text()
    for name in ("background", "disc", "square", "triangle"):
        assert name in text
    assert "mIoU" in text and "stuck in" in text
    numbers = json.loads((out / "report.json").read_text())
    detail = json.dumps(numbers)
    assert "per_class" in detail
    figures = {p.name for p in (out / "figures").iterdir()}
    assert any(n.startswith("multiclass_segmentation_confusion") for n in figures)
    assert any(n.startswith("multiclass_segmentation_cases") for n in figures)


def _index_folder(root: Path, arrays: dict, palette: list | None = None) -> None:
    for split in ("train", "val", "test"):
        for i, (x, y) in enumerate(zip(arrays[f"x_{split}"], arrays[f"y_{split}"])):
            save_png(root / split / "images" / f"{split}_{i:02d}.png", x[..., 0])
            mask = y if palette is None else np.array(palette, np.uint8)[y]
            save_png(root / split / "masks" / f"{split}_{i:02d}.png", mask)


@pytest.mark.parametrize("layout", ["index_folder", "palette_folder", "index_npz"])
def test_index_and_palette_masks_train_and_name_their_cases(tmp_path, layout):
    arrays = make_synthetic_multiclass(n_train=6, n_val=2, n_test=3, size=64, seed=1, num_classes=4)
    extra = []
    if layout == "index_npz":
        np.savez(tmp_path / "d.npz", **arrays)
        source = tmp_path / "d.npz"
        data = ["data=seg_npz"]
    else:
        source = tmp_path / "folder"
        _index_folder(source, arrays, PALETTE4 if layout == "palette_folder" else None)
        data = ["data=seg_folder"]
        if layout == "palette_folder":
            extra = [f"data.palette={json.dumps(PALETTE4).replace(' ', '')}"]
    tiny = [o for o in TINY_SEG if not o.startswith(("data=", "data.n_"))]
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_baseline",
            *tiny,
            *data,
            f"data.data_dir={source}",
            "data.image_size=64",
            *K4,
            "trainer.max_epochs=1",
            *extra,
        ],
    )
    summary = run(cfg)
    assert summary["status"] == "completed" and 0 <= summary["test"]["test/miou"] <= 1
    rows = read_rows(tmp_path / "run" / "test_cases.csv")
    expected = (
        [f"x_test[{i}]" for i in range(3)]
        if layout == "index_npz"
        else [f"test/images/test_{i:02d}.png" for i in range(3)]
    )
    assert [r["source"] for r in rows] == expected
    loaded, _ = load_segmentation(source, "auto", 1, 64, mask_spec(4, None, PALETTE4 if extra else None))
    np.testing.assert_array_equal(
        loaded["y_test"], arrays["y_test"]
    )  # palette colours map back to the indices


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 600, text
    return text


def test_bad_masks_are_refused_in_one_line_naming_file_value_and_what_to_set(tmp_path):
    image = np.full((8, 12), 100, np.uint8)
    k11 = mask_spec(11, None, None)

    def folder(name: str, mask: np.ndarray, img: np.ndarray = image) -> Path:
        save_png(tmp_path / name / "images" / "a.png", img)
        save_png(tmp_path / name / "masks" / "a.png", mask)
        return tmp_path / name

    bad = np.zeros((8, 12), np.uint8)
    bad[3, 4] = 12
    with pytest.raises(DataError) as err:
        load_segmentation(folder("twelve", bad), "folder", 1, None, k11)
    text = _one_line(err.value)
    assert (
        "masks/a.png" in text
        and "value 12" in text
        and "data.ignore_index=12" in text
        and "case 0" not in text
    )
    load_segmentation(folder("twelve", bad), "folder", 1, None, mask_spec(11, 12, None))  # 12 ignored: fine

    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[2, 5] = (9, 9, 200)
    with pytest.raises(DataError) as err:
        load_segmentation(folder("colour", rgb), "folder", 1, None, mask_spec(4, None, PALETTE4))
    text = _one_line(err.value)
    assert "[9, 9, 200]" in text and "row 2, column 5" in text and "data.palette" in text

    with pytest.raises(DataError) as err:  # another size, no resizing: refused
        load_segmentation(folder("size", np.zeros((8, 10), np.uint8)), "folder", 1, None, k11)
    assert "8×10" in _one_line(err.value) and "8×12" in str(err.value)
    with pytest.raises(
        DataError
    ) as err:  # another aspect ratio is refused even when resizing (no silent stretch)
        load_segmentation(folder("aspect", np.zeros((12, 8), np.uint8)), "folder", 1, 16, k11)
    assert "aspect" in _one_line(err.value)
    with pytest.raises(DataError) as err:  # a colour mask without a palette
        load_segmentation(folder("nopal", rgb), "folder", 1, None, k11)
    assert "data.palette" in _one_line(err.value)
    grey_alpha = np.stack([np.ones((8, 12), np.uint8), np.full((8, 12), 255, np.uint8)], -1)
    arrays, _ = load_segmentation(folder("la", grey_alpha), "folder", 1, None)  # grey + alpha is grey, binary
    assert arrays["y_train"].max() == 1

    x = np.zeros((3, 8, 8), np.uint8)
    for name, y, words in (
        ("nan", np.full((3, 8, 8), np.nan), "NaN"),
        ("text", np.full((3, 8, 8), "a"), "dtype"),
        ("half", np.full((3, 8, 8), 0.5), "0.5"),
    ):
        np.savez(tmp_path / f"{name}.npz", x_train=x, y_train=y)
        for spec in (MaskSpec(), k11):
            with pytest.raises(DataError) as err:
                load_segmentation(tmp_path / f"{name}.npz", "npz", 1, None, spec)
            assert words in _one_line(err.value) and f"{name}.npz" in str(err.value)
    np.savez(
        tmp_path / "two.npz", x_train=np.zeros((3, 8, 8, 2), np.uint8), y_train=np.zeros((3, 8, 8), np.uint8)
    )
    with pytest.raises(DataError) as err:
        load_segmentation(tmp_path / "two.npz", "npz", 1, None)
    assert "1 (grey) or 3 (RGB)" in _one_line(err.value) and "data.channels=2" not in str(err.value)

    from PIL import Image

    (tmp_path / "tif" / "images").mkdir(parents=True)
    (tmp_path / "tif" / "masks").mkdir(parents=True)
    save_png(tmp_path / "tif" / "images" / "a.png", image)
    Image.fromarray(np.full((8, 12), 0.25, np.float32)).save(tmp_path / "tif" / "masks" / "a.tif")
    with pytest.raises(DataError) as err:
        load_segmentation(tmp_path / "tif", "folder", 1, None)
    assert "a.tif" in _one_line(err.value) and "0.25" in str(err.value)


def test_an_oversized_image_is_refused_before_decoding(tmp_path, monkeypatch):
    from visionlab.data.segmentation import sources

    monkeypatch.setattr(sources, "MAX_PIXELS", 50)
    save_png(tmp_path / "f" / "images" / "a.png", np.zeros((8, 12), np.uint8))
    save_png(tmp_path / "f" / "masks" / "a.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(DataError) as err:
        load_segmentation(tmp_path / "f", "folder", 1, None)
    assert "a.png" in _one_line(err.value) and "12×8" in str(err.value)


def test_mask_config_is_checked_in_one_line():
    with pytest.raises(ConfigError, match="data.ignore_index=3"):
        mask_spec(4, 3, None)
    with pytest.raises(ConfigError, match="5 colours"):
        mask_spec(4, 255, PALETTE4)
    with pytest.raises(ConfigError, match="two classes"):
        mask_spec(2, None, [[1, 2, 3], [1, 2, 3]])


def test_foreground_crops_centre_on_a_rare_class_and_both_backends_keep_the_classes():
    masks = torch.zeros(4, 32, 48, dtype=torch.uint8)
    masks[:, 20, 40] = 3  # one pixel of class 3 far from the centre
    images = torch.arange(4 * 32 * 48, dtype=torch.int64).reshape(4, 32, 48, 1).remainder(256).to(torch.uint8)
    crops = RandomCrops((8, 8), p_foreground=1.0, classes=(3,))
    x, y = crops(images, masks, torch.Generator().manual_seed(0))
    assert x.shape == (4, 8, 8, 1) and (y == 3).flatten(1).any(1).all()  # every crop holds the rare pixel
    assert (y == 3).nonzero()[:, 1:].tolist() == [[4, 4]] * 4  # and centres it

    from visionlab.data.segmentation.augment import SegmentationBatchAugment
    from visionlab.data.segmentation.datamodule import AugmentedSegmentation
    from visionlab.data.segmentation.recipe import SegmentationRecipe

    recipe = SegmentationRecipe(
        elastic={"alpha": 30.0, "sigma": 4.0, "p": 1.0},
        flip="horizontal",
        shift=0.1,
        rotate=20.0,
        scale=0.1,
        brightness=0.1,
        contrast=0.1,
        p_affine=1.0,
        p_intensity=0.5,
        gamma=0.0,
        p_gamma=0.0,
    )
    arrays = make_synthetic_multiclass(
        n_train=8, n_val=1, n_test=1, size=32, seed=2, num_classes=4, ignore_index=255
    )
    values = set(np.unique(arrays["y_train"]).tolist())
    _, augmented = SegmentationBatchAugment(recipe)(
        torch.from_numpy(arrays["x_train"]),
        torch.from_numpy(arrays["y_train"]),
        torch.Generator().manual_seed(1),
    )
    assert set(torch.unique(augmented).tolist()) <= values  # nearest: no invented class, no fill value
    dataset = AugmentedSegmentation(
        arrays["x_train"],
        arrays["y_train"],
        seed=0,
        recipe=recipe,
        crops=RandomCrops((16, 16), 0.5, (1, 2, 3)),
    )
    _, reference = dataset.__getitems__(list(range(8)))
    assert reference.shape == (8, 16, 16) and set(torch.unique(reference).tolist()) <= values


def test_a_class_whose_validation_dice_never_rises_is_stuck():
    from visionlab.record.health import assess

    rows = [
        {
            "epoch": e,
            "val/miou": 0.3 + e / 10,
            "val/dice_c0": 0.9,
            "val/dice_c1": 0.5 + e / 10,
            "val/dice_c2": 0.04,
            "val/dice_c3": 0.02 if e < 2 else 0.2,
        }
        for e in range(4)
    ]
    section = assess(rows, "multiclass_segmentation", "val/miou", "max")
    assert section["status"] == "ok" and section["stuck_classes"] == [2]
    collapsed = [{"epoch": e, "val/dice_c0": 0.95, "val/dice_c1": 0.0, "val/dice_c2": 0.01} for e in range(3)]
    section = assess(collapsed, "multiclass_segmentation", "val/miou", "max")
    assert section["status"] == "stuck" and section["stuck_classes"] == [1, 2]


def test_binary_config_refuses_k_class_settings_in_one_line(tmp_path):
    cfg = compose(tmp_path, ["experiment=unet_baseline", *TINY_SEG, "data.num_classes=4"])
    with pytest.raises(ConfigError, match="model.loss='bce_dice' is a binary loss"):
        run(cfg)
    cfg = compose(tmp_path, ["experiment=unet_baseline", *TINY_SEG, "model.class_weights=auto"])
    with pytest.raises(ConfigError, match="class_weights"):
        run(cfg)


@run_if(shared_data="camvid")
def test_camvid_loads_as_published_with_void_ignored(tmp_path):
    from hydra.utils import instantiate

    cfg = compose(
        tmp_path,
        [
            "experiment=unet_camvid",
            f"data.data_dir={shared_data_dir() / 'camvid'}",
            "data.image_size=[96,128]",
            "data.crop=null",
        ],
    )
    dm = instantiate(cfg.data)
    dm.setup("fit")
    sizes = {s: len(dm.splits[s][1]) for s in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}
    values = set(np.unique(dm.arrays["y_train"]).tolist())
    assert values <= set(range(12)) and 11 in values and dm.facts.num_classes == 11
    assert dm.case_source("test", 0).startswith("test/images/") and dm.image_shape == (96, 128)
    counts = dm.class_pixel_counts()
    assert counts.argmax() in (0, 1, 3)  # sky, building or road: the large classes


def test_the_camvid_preset_composes_and_trains_one_batch_on_synthetic_classes(tmp_path):
    """The preset's recipe (crops, oversampling, class weights, horizontal flips) on generated 11-class
    data."""
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_camvid",
            "data=synthetic_seg",
            "data.channels=1",
            "data.image_size=64",
            "data.crop=[32,48]",
            "data.num_classes=11",
            "data.ignore_index=11",
            "data.class_names=null",
            "data.n_train=8",
            "data.n_val=4",
            "data.n_test=4",
            "data.num_workers=0",
            "data.batch_size=4",
            "data.eval_batch_size=4",
            "model.mean=[0.5]",
            "model.std=[0.25]",
            "model.net.features_start=4",
            "logger=none",
            "+trainer.fast_dev_run=1",
            "trainer.enable_progress_bar=false",
            "callbacks.rich_progress_bar=null",
        ],
    )
    assert cfg.monitor == "val/miou" and cfg.data.num_classes == 11 and cfg.data.ignore_index == 11
    summary = run(cfg)
    assert summary["status"] == "completed" and summary["task"] == "multiclass_segmentation"
    assert (
        summary["test"]["test/cases"] == 4 and len(summary["multiclass_segmentation"]["class_weights"]) == 11
    )
