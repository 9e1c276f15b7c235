"""Your own data: an image folder (torchvision's ImageFolder layout), CIFAR-10 in torchvision's on-disk
format, a segmentation folder of any-size RGB images and masks; the data's facts in summary.json; the README
walkthrough ("Your own data and your own network") followed literally on generated folders."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import QUIET_SHORT, REPO, compose
from visionlab.config.errors import ConfigError, DataError
from visionlab.data.classification.folders import class_folders, groups_from_names, load_image_folder
from visionlab.networks import registry as networks
from visionlab.run.execute import run

CLASSES = ("circle", "square", "stripes")
QUIET = [
    "logger=none",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


def make_image_folder(
    root: Path, per_class: int = 12, size: int = 48, classes=CLASSES, grey_every: int = 4
) -> Path:
    """``root/<class>/<class>_<i>.png``: a bright shape per class on noise, every ``grey_every``-th image grey
    and every 5th another size."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = size + (8 if i % 5 == 4 else 0)
            yy, xx = np.mgrid[:side, :side] - side / 2
            shape = [
                (yy**2 + xx**2) < (side / 3.5) ** 2,
                (abs(yy) < side / 4) & (abs(xx) < side / 4),
                (xx // 6) % 2 == 0,
            ][label % 3]
            image = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
            image[shape] = (200, 170, 60)
            img = Image.fromarray(image)
            (img.convert("L") if grey_every and i % grey_every == 0 else img).save(
                root / name / f"{name}_{i:03d}.png"
            )
    return root


def make_mask_folder(root: Path, n: int = 10) -> Path:
    """``root/images/<case>.jpg`` (RGB, sizes vary) + ``root/masks/<case>.png`` (half the image's size)."""
    rng = np.random.default_rng(1)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(48, 96, 2))
        yy, xx = np.mgrid[:h, :w]
        inside = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2
        image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        image[inside] += 120
        Image.fromarray(image).save(root / "images" / f"case{i:02d}.jpg")
        Image.fromarray((inside * 255).astype(np.uint8)).resize((w // 2, h // 2), Image.NEAREST).save(
            root / "masks" / f"case{i:02d}.png"
        )
    return root


# --------------------------------------------------------------------------------------------- the README,
# literally
def readme_commands() -> list[str]:
    """The ``python train.py …`` lines of the README's walkthrough that need no network."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own data and your own network", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [
        line.split("  #")[0].strip()
        for line in lines
        if line.startswith("python train.py") and "download=true" not in line
    ]


def test_the_readme_walkthrough_trains_on_generated_folders(tmp_path):
    """Make the folders the README names, run its commands from that folder: the first as a real process (the
    one command a researcher types), the others in-process through the same CLI error path; each run's record
    names the classes and the split policy. A command whose optional extra is missing is skipped with one
    line."""
    commands = readme_commands()
    assert len(commands) == 3 and "data=image_folder data.data_dir=my_images" in commands[0]
    make_image_folder(tmp_path / "my_images")
    make_mask_folder(tmp_path / "my_masks")
    started = time.monotonic()
    first = shlex.split(commands[0])[2:]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *first, "logger=none"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (summary_file,) = (tmp_path / "logs" / "runs" / "cnn_image_folder").glob("*/summary.json")
    facts = json.loads(summary_file.read_text())["data_facts"]
    assert facts["class_names"] == list(CLASSES) and facts["num_classes"] == 3
    assert facts["split_policy"] == "stratified" and facts["channels"] == 3 and facts["input_size"] == 56
    skipped = []
    for index, command in enumerate(commands[1:], 1):
        kind = next((k for k in ("timm", "smp") if f"model/net={k}" in command), None)
        if kind and (why := networks.missing_extra(networks.REGISTRY[kind])) is not None:
            skipped.append(why)
            continue
        # a segmentation preset's epoch is 160 samples (40 steps): one pass over the 10 images checks the same
        # path
        quick = ["data.samples_per_epoch=null"] if "data=seg_folder" in command else []
        cfg = compose(
            tmp_path,
            [*shlex.split(command)[2:], *QUIET, *quick, f"paths.log_dir={tmp_path / 'logs'}"],
            output=f"run{index}",
        )
        os.chdir(tmp_path)  # relative data folders, as on the command line
        try:
            summary = run(cfg)
        finally:
            os.chdir(REPO)
        assert summary["status"] == "completed" and summary["data_facts"]["split_policy"] in (
            "stratified",
            "random",
        )
        checkpoint = torch.load(tmp_path / f"run{index}" / "checkpoints" / "last.ckpt", weights_only=True)
        assert checkpoint["hyper_parameters"]["net"]["type"] == kind  # the network spec is plain data
    print(
        f"README walkthrough: {time.monotonic() - started:.1f} s"
        + (f"; skipped: {skipped}" if skipped else "")
    )


# --------------------------------------------------------------------------------------------- the image
# folder
def test_an_image_folder_is_decoded_once_and_split_by_policy(tmp_path, monkeypatch):
    folder = make_image_folder(tmp_path / "imgs", per_class=10)
    assert class_folders(folder) == list(CLASSES)
    arrays = load_image_folder(folder, tmp_path / "cache", 32, 3)
    assert arrays["x_train"].shape == (30, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    assert arrays["y_train"].tolist() == [0] * 10 + [1] * 10 + [2] * 10
    grey = load_image_folder(folder, tmp_path / "cache", 32, 1)
    assert grey["x_train"].shape == (30, 32, 32, 1)
    from visionlab.data.classification import folders

    monkeypatch.setattr(
        folders, "decode", lambda *a: pytest.fail("decoded again instead of read from the cache")
    )
    again = load_image_folder(folder, tmp_path / "cache", 32, 3)
    assert np.array_equal(again["x_train"], arrays["x_train"])
    groups = groups_from_names(
        np.asarray(["a/track7_001.png", "a/track7_002.png", "a/x.png", "b/track7_001.png"]), r"^(.+)_[^_]+$"
    )
    assert groups[0] == groups[1] and len(set(groups.tolist())) == 3


def test_train_val_test_folders_are_used_as_given(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        make_image_folder(tmp_path / "imgs" / split, per_class=n, grey_every=0)
    summary = run(
        compose(
            tmp_path,
            [
                "data=image_folder",
                f"data.data_dir={tmp_path / 'imgs'}",
                "data.image_size=32",
                "data.crop=28",
                *QUIET,
                *QUIET_SHORT[1:],
            ],
        )
    )
    facts = summary["data_facts"]
    assert (
        facts["split_policy"] == "given"
        and facts["class_names"] == list(CLASSES)
        and facts["input_size"] == 28
    )
    assert summary["test"]["test/acc"] >= 0 and summary["n_params"] == 87_403 - 43 * 513 + 3 * 513


def test_group_split_keeps_files_of_one_group_together(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", per_class=12, grey_every=0)
    for path in sorted(folder.rglob("*.png")):  # circle_003.png → circle_g1_003.png: 4 groups of 3 per class
        label, index = path.stem.rsplit("_", 1)
        path.rename(path.with_name(f"{label}_g{int(index) // 3}_{index}.png"))
    from hydra.utils import instantiate

    from visionlab.data.classification.image_folder import ImageFolderDataModule

    cfg = compose(
        tmp_path,
        [
            "data=image_folder",
            f"data.data_dir={folder}",
            "data.split_policy=group",
            "data.image_size=32",
            "data.crop=28",
            "data.num_workers=0",
        ],
    )
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, ImageFolderDataModule)
    datamodule.setup("fit")
    assert datamodule.facts.split_policy == "group" and "whole groups" in datamodule.facts.split
    sizes = {name: len(y) for name, (_, y) in datamodule.splits.items()}
    assert sum(sizes.values()) == 36 and all(size % 3 == 0 for size in sizes.values())  # whole groups of 3


def test_a_folder_that_disagrees_with_its_config_is_one_clear_error(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", per_class=4)
    with pytest.raises(
        DataError, match=r"3 class folders \(circle, square, stripes\) but data\.num_classes=5"
    ):
        run(
            compose(
                tmp_path,
                [
                    "data=image_folder",
                    f"data.data_dir={folder}",
                    "data.num_classes=5",
                    "data.class_names=[a,b,c,d,e]",
                    *QUIET,
                    "trainer.max_epochs=1",
                ],
            )
        )
    with pytest.raises(ConfigError, match=r"data\.class_names has 2 names but data\.num_classes=3"):
        run(
            compose(
                tmp_path,
                [
                    "data=image_folder",
                    f"data.data_dir={folder}",
                    "data.class_names=[a,b]",
                    *QUIET,
                    "trainer.max_epochs=1",
                ],
                output="run2",
            )
        )
    with pytest.raises(
        DataError,
        match=r"data\.data_dir=.*nowhere does not exist: an image folder holds one "
        r"sub-folder per class",
    ):
        run(
            compose(
                tmp_path, ["data=image_folder", f"data.data_dir={tmp_path / 'nowhere'}", *QUIET], output="r3"
            )
        )
    assert not (tmp_path / "r3").exists() and not (tmp_path / "run2").exists()  # refused before any folder
    with pytest.raises(ConfigError, match=r"model\.num_classes=7 does not match data\.num_classes=3"):
        run(
            compose(
                tmp_path,
                ["data=image_folder", f"data.data_dir={folder}", "model.num_classes=7", *QUIET],
                output="r4",
            )
        )


# --------------------------------------------------------------------------------------------- CIFAR-10,
# faked
def fake_cifar10(root: Path, n_train: int = 200, n_test: int = 50) -> dict[str, str]:
    """torchvision's on-disk CIFAR-10 (``cifar-10-batches-py``: pickled batches of uint8 rows) with tiny data;
    the md5 of each file, for torchvision's integrity check."""
    rng = np.random.default_rng(2)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    per_batch = n_train // 5
    files = {f"data_batch_{i}": per_batch for i in range(1, 6)} | {"test_batch": n_test}
    for name, n in files.items():
        labels = (np.arange(n) % 10).tolist()
        data = rng.integers(0, 255, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": names}, fh)
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_the_cifar10_preset_trains_from_torchvisions_format(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    md5 = fake_cifar10(tmp_path / "cifar")
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    summary = run(
        compose(
            tmp_path,
            [
                "data=cifar10",
                f"data.data_dir={tmp_path / 'cifar'}",
                *QUIET,
                "trainer.max_epochs=1",
                "data.batch_size=64",
            ],
        )
    )
    facts = summary["data_facts"]
    assert facts["num_classes"] == 10 and facts["class_names"][:2] == ["airplane", "automobile"]
    assert facts["input_size"] == 32 and facts["split_policy"] == "stratified"
    assert summary["test"]["test/acc"] >= 0 and summary["test_split"] == "available"
    assert summary["n_params"] == 87_403 - 43 * 513 + 10 * (
        32 * 5 * 5 + 1
    )  # the seed CNN at 32×32, 10 classes


def test_cifar10_without_its_files_says_how_to_get_them(tmp_path):
    with pytest.raises(DataError, match=r"CIFAR-10 .*cannot load the train split .*data\.download=true"):
        run(compose(tmp_path, ["data=cifar10", f"data.data_dir={tmp_path}", *QUIET]))


# --------------------------------------------------------------------------------------------- segmentation,
# facts
def test_segmentation_folder_takes_rgb_images_and_masks_of_any_size(tmp_path):
    folder = make_mask_folder(tmp_path / "masks", n=10)
    summary = run(
        compose(
            tmp_path,
            [
                "experiment=unet_baseline",
                "data=seg_folder",
                f"data.data_dir={folder}",
                "data.channels=3",
                "data.image_size=32",
                "model.net.features_start=4",
                "model.net.depth=3",
                "trainer.max_epochs=1",
                "data.batch_size=4",
                *QUIET,
            ],
        )
    )
    facts = summary["data_facts"]
    assert facts == {
        **facts,
        "task": "segmentation",
        "num_classes": 2,
        "class_names": ["background", "foreground"],
        "channels": 3,
        "input_size": 32,
        "split_policy": "random",
    }
    assert facts["split"].startswith("6 train / 2 val / 2 test")


def test_the_seed_data_sets_state_their_facts(tmp_path):
    summary = run(
        compose(
            tmp_path,
            [
                "data.tracks_per_class=2",
                "data.frames_per_track=2",
                "data.test_tracks_per_class=1",
                "+trainer.fast_dev_run=1",
                *QUIET,
            ],
        )
    )
    facts = summary["data_facts"]
    assert facts["num_classes"] == 43 and facts["class_names"][0] == "circle red/white hbar"
    assert facts["split_policy"] == "group" and facts["input_size"] == 28 and facts["channels"] == 3
    gtsrb = compose(tmp_path, ["data=gtsrb"], output="g")
    assert gtsrb.data.class_names[14] == "Stop" and gtsrb.model.num_classes == 43
