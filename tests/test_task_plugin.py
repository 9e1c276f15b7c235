"""A task is a plug-in: a third task, defined here and nowhere in visionlab, registers itself and then trains
through the normal run path, gets a run record and a report page, with no edit to the runner, the run record
or the report (the registry is the plug-in point).

The toy task is regression: predict the mean brightness of a tiny synthetic grey image. Its LightningModule
and datamodule live in this file and are named by the config's ``_target_``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf, open_dict
from torch.utils.data import DataLoader, TensorDataset

from helpers import compose
from visionlab.data.facts import DataFacts, validation_split_name
from visionlab.record.metric_keys import TASKS, Metric, TaskMetrics
from visionlab.run.execute import run
from visionlab.tasks.registry import Task, get_task, register_task, task_of_module, unregister_task

TASK = "brightness_regression"
TRAIN_LOSS, VAL_LOSS, VAL_MAE, TEST_MAE = "train/loss", "val/loss", "val/mae", "test/mae"
MODULE = f"{__name__}.BrightnessModule"
DATA = f"{__name__}.BrightnessData"

REGRESSION = TaskMetrics(
    task=TASK,
    per_epoch=(
        Metric(TRAIN_LOSS, "loss", "loss", "min"),
        Metric(VAL_LOSS, "loss", "loss", "min"),
        Metric(VAL_MAE, "mean absolute error", better="min"),
    ),
    test=(Metric(TEST_MAE, "mean absolute error", better="min"),),
    headline=TEST_MAE,
    validation_headline=VAL_MAE,
    report_test=(TEST_MAE,),
    curves=(TRAIN_LOSS, VAL_LOSS, VAL_MAE, VAL_MAE),
)


class BrightnessData(pl.LightningDataModule):
    """Images of one grey level each (plus noise); the target is the image's mean brightness in 0..1."""

    def __init__(self, n: int = 48, size: int = 8, data_seed: int = 0, batch_size: int = 16, name: str = "b"):
        super().__init__()
        self.n, self.size, self.data_seed, self.batch_size = n, size, data_seed, batch_size
        self.splits: dict = {}

    def setup(self, stage=None):
        rng = np.random.default_rng(self.data_seed)
        level = rng.uniform(0, 1, self.n).astype(np.float32)
        noise = rng.normal(0, 0.05, (self.n, 1, self.size, self.size)).astype(np.float32)
        x = np.clip(level[:, None, None, None] + noise, 0, 1)
        y = x.mean(axis=(1, 2, 3))
        cut = [0, self.n // 2, 3 * self.n // 4, self.n]
        for name, a, b in zip(("train", "val", "test"), cut, cut[1:]):
            self.splits[name] = TensorDataset(torch.from_numpy(x[a:b]), torch.from_numpy(y[a:b]))

    def train_dataloader(self):
        return DataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.splits["val"], batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.splits["test"], batch_size=self.batch_size)

    description = "synthetic grey images (mean brightness)"
    test_available = True
    image_shape = (8, 8)
    channels = 1

    def use_global_batch(self, world_size: int) -> None:
        """The runner calls this on every datamodule (``run/execute.py``; not yet in ``TaskDataModule``): one
        process here, so the batch stays as configured."""

    @property
    def facts(self):
        return DataFacts(TASK, 0, (), 1, (self.size, self.size), "random", "first half train")


class BrightnessModule(pl.LightningModule):
    """One linear layer over the pixels: it learns the mean within a few epochs."""

    task = TASK

    def __init__(self, lr: float = 0.05, name: str = "linear"):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(64, 1)

    def forward(self, x):
        return self.net(x.flatten(1)).squeeze(1)

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log(TRAIN_LOSS, loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log(VAL_LOSS, torch.nn.functional.mse_loss(self(x), y), on_epoch=True)
        self.log(VAL_MAE, (self(x) - y).abs().mean(), on_epoch=True)

    def test_step(self, batch, _):
        x, y = batch
        self.log(TEST_MAE, (self(x) - y).abs().mean(), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def media_callback(self):
        return None

    def summary_section(self) -> dict:
        return {}

    def save_test_artifacts(self, folder) -> None:
        pass

    def save_fit_artifacts(self, folder) -> None:
        pass


@pytest.fixture
def regression_task():
    register_task(Task(TASK, REGRESSION, modules=(MODULE,)))
    yield
    unregister_task(TASK)


def _config(tmp_path, seed: int):
    cfg = compose(
        tmp_path,
        [
            f"seed={seed}",
            "logger=none",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "callbacks.rich_progress_bar=null",
            f"monitor={VAL_MAE}",
            "monitor_mode=min",
            "experiment_name=brightness",
        ],
        output=f"runs/brightness_s{seed}",
    )
    with open_dict(cfg):
        cfg.model = OmegaConf.create({"_target_": MODULE, "lr": 0.05, "name": "linear"})
        cfg.data = OmegaConf.create({"_target_": DATA, "name": "brightness", "data_seed": 0})
    return cfg


def test_a_registered_task_trains_records_and_reports_without_a_core_edit(regression_task, tmp_path):
    assert task_of_module(MODULE) == TASK and TASKS[TASK] is REGRESSION
    maes = []
    for seed in (1, 2):
        summary = run(_config(tmp_path, seed))
        record = json.loads((tmp_path / f"runs/brightness_s{seed}" / "summary.json").read_text())
        assert record["task"] == TASK and record["status"] == "completed"
        assert record["test"][TEST_MAE] == pytest.approx(summary["test"][TEST_MAE])
        assert 0 <= record["test"][TEST_MAE] < 1
        maes.append(record["test"][TEST_MAE])
    from visionlab.cli.report import main

    out = tmp_path / "report"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-figures", "--title", "brightness"]) == 0
    numbers = json.loads((out / "report.json").read_text())
    (measure,) = numbers["tasks"][TASK]["measures"]
    (variant,) = measure["variants"]
    assert variant["variant"] == "brightness" and variant["split"] == "test" and variant["n"] == 2
    assert variant["values"] == pytest.approx(maes)
    assert variant["mean"] == pytest.approx(np.mean(maes))
    assert variant["std"] == pytest.approx(np.std(maes, ddof=1))
    markdown = (out / "REPORT.md").read_text()
    assert f"Results ({TASK})" in markdown and "mean absolute error" in markdown
    assert f"{np.mean(maes):.4f} ± {np.std(maes, ddof=1):.4f}" in markdown


def test_an_unregistered_task_has_no_report_tables_and_its_model_is_not_recognised():
    assert get_task(TASK) is None and task_of_module(MODULE) is None and TASK not in TASKS


def test_a_random_classification_split_is_never_called_track_held_out():
    """The validation split is named from the data source's recorded split policy: image folders and
    CIFAR-10 split at random per class, GTSRB by whole tracks."""
    stratified = DataFacts("classification", 2, ("a", "b"), 3, (8, 8), "stratified").record()
    assert validation_split_name(stratified) == "validation (random, stratified by class)"
    groups = DataFacts("classification", 2, ("a", "b"), 3, (8, 8), "group").record()
    assert validation_split_name(groups) == "validation (group-held-out)"
    tracks = DataFacts("classification", 2, ("a", "b"), 3, (8, 8), "group", groups="track").record()
    assert validation_split_name(tracks) == "validation (track-held-out)"


@pytest.mark.parametrize(
    ("data_target", "facts", "named"),
    [
        (  # data=image_folder: a random per-class split
            "visionlab.data.classification.image_folder.ImageFolderDataModule",
            DataFacts("classification", 43, tuple(map(str, range(43))), 3, (28, 28), "stratified").record(),
            "validation (random, stratified by class)",
        ),
        (  # data=image_folder with data.split_policy=group, recorded before ``groups`` was
            "visionlab.data.classification.image_folder.ImageFolderDataModule",
            {"split_policy": "group"},
            "validation (group-held-out)",
        ),
        (  # GTSRB: whole tracks
            "visionlab.data.classification.datamodule.GTSRBDataModule",
            DataFacts("classification", 43, (), 3, (28, 28), "group", groups="track").record(),
            "validation (track-held-out)",
        ),
    ],
    ids=["image_folder", "image_folder_groups", "gtsrb"],
)
def test_the_report_names_a_classification_validation_split_by_its_data_source(
    tmp_path, data_target, facts, named
):
    from report_fixtures import classification_run, write_report

    for seed in (1, 2):
        classification_run(
            tmp_path / "runs",
            "cnn_baseline",
            seed,
            [0.4, 0.5 + seed / 100],
            config={"data": {"_target_": data_target}},
            extra_summary={"data_facts": facts, "data": "my images"},
        )
    markdown, _, _ = write_report(tmp_path / "out", str(tmp_path / "runs"))
    assert f"on {named}, at the best epoch" in markdown
    if "track" not in named:
        assert "track-held-out" not in markdown


def test_a_run_that_died_before_its_summary_is_recognised_by_its_registered_model(regression_task, tmp_path):
    """Without summary.json the report knows a run's task only from its model's ``_target_``: a registered
    plug-in's module, or a built-in module under the name older records used."""
    from visionlab.record.folder import RunFolder
    from visionlab.report.collect import load_run

    for name, target in (
        ("plugin", MODULE),
        ("older", "visionlab.models.classifier.ClassificationModule"),
        ("unet", "visionlab.tasks.segmentation.module.SegmentationModule"),
        ("foreign", "somewhere.else.Model"),
    ):
        RunFolder(tmp_path / name).create().write_config({"model": {"_target_": target}})
    tasks = {
        name: load_run(RunFolder(tmp_path / name)).task for name in ("plugin", "older", "unet", "foreign")
    }
    assert tasks == {"plugin": TASK, "older": "classification", "unet": "segmentation", "foreign": "unknown"}


def test_every_built_in_tasks_record_files_are_copied_with_the_reviewable_record():
    """A task's per-case / per-class files are what ``--copy-records`` must carry for its report sections."""
    from visionlab.record.layout import AUDIT_FILES
    from visionlab.tasks.registry import tasks

    built_in = {name: task for name, task in tasks().items() if name != TASK}
    assert set(built_in) == {"classification", "segmentation", "multiclass_segmentation"}
    for task in built_in.values():
        assert task.record_files and set(task.record_files) <= set(AUDIT_FILES), task.name
        assert task.report is not None and task.media is not None


def test_the_data_sources_record_what_their_split_holds_out(tmp_path):
    """The synthetic signs (like GTSRB) hold out whole tracks and say so in their facts; an image folder split
    by file-name groups, or at random per class, never claims tracks."""
    from hydra.utils import instantiate

    from test_own_data import make_image_folder

    signs = instantiate(
        compose(
            tmp_path,
            ["data.tracks_per_class=2", "data.frames_per_track=2", "data.test_tracks_per_class=1"],
        ).data
    )
    signs.setup("fit")
    assert signs.facts.groups == "track"
    assert validation_split_name(signs.facts.record()) == "validation (track-held-out)"
    folder = make_image_folder(tmp_path / "imgs", per_class=12, grey_every=0)
    for path in sorted(folder.rglob("*.png")):  # circle_003.png → circle_g1_003.png: 4 groups of 3 per class
        label, index = path.stem.rsplit("_", 1)
        path.rename(path.with_name(f"{label}_g{int(index) // 3}_{index}.png"))
    for policy, named in (
        ("group", "validation (group-held-out)"),
        ("stratified", "validation (random, stratified by class)"),
    ):
        images = instantiate(
            compose(
                tmp_path,
                [
                    "data=image_folder",
                    f"data.data_dir={folder}",
                    f"data.split_policy={policy}",
                    "data.image_size=32",
                    "data.crop=28",
                ],
            ).data
        )
        images.setup("fit")
        assert images.facts.groups == "" and validation_split_name(images.facts.record()) == named
