"""Training recipes: the seed presets' exact optimizers, the per-step schedule, time-to-accuracy in the
record."""

import pytest

from helpers import TINY_SIGNS, compose
from visionlab.config.errors import ConfigError
from visionlab.record import metric_keys as keys
from visionlab.record.folder import RunFolder
from visionlab.run.execute import run


@pytest.mark.parametrize(
    ("experiment", "target", "settings"),
    [
        ("cnn_baseline", "torch.optim.Adam", {"lr": 1e-3, "eps": 0.1}),
        (
            "cnn_sgd",
            "torch.optim.SGD",
            {"lr": 1e-3, "momentum": 0.0},
        ),  # optim.SGD(net.parameters(), lr=0.001)
        ("cnn_rprop", "torch.optim.Rprop", {"lr": 1e-3}),  # optim.Rprop(net.parameters(), lr=0.001)
    ],
)
def test_seed_presets_swap_exactly_the_seeds_optimizers(tmp_path, experiment, target, settings):
    cfg = compose(tmp_path, [f"experiment={experiment}"])
    assert cfg.model.optimizer._target_ == target
    for key, value in settings.items():
        assert cfg.model.optimizer[key] == pytest.approx(value), key
    assert cfg.model.net.width == 1.0 and cfg.model.get("scheduler") is None
    assert cfg.trainer.max_epochs >= 50 and cfg.callbacks.early_stopping.monitor == "val/acc"


def test_per_step_schedule_runs_and_time_to_accuracy_is_recorded(tmp_path):
    summary = run(
        compose(
            tmp_path,
            [
                *TINY_SIGNS,
                "logger=none",
                "test=false",
                "trainer.max_epochs=3",
                "model/scheduler=warmup_cosine",
                "model.optimizer.lr=0.01",
                "model.scheduler.warmup_epochs=0",
            ],
        )
    )
    assert summary["status"] == "completed"
    rows = RunFolder(tmp_path / "run").read_metrics()
    lrs = [row[keys.lr_column(0)] for row in rows]
    assert lrs[0] == pytest.approx(0.01) and lrs[0] > lrs[1] > lrs[2]  # stepped every batch, decaying
    milestones = summary[keys.TIME_TO]
    assert list(milestones) == ["val/acc>=0.9", "val/acc>=0.95", "val/acc>=0.97", "val/acc>=0.99"]
    started = rows[-1][keys.TIME] - summary["wall_time_s"]  # wall time is measured from the same start
    for name, seconds in milestones.items():
        threshold = float(name.split(">=")[1])
        first = next((r for r in rows if r[keys.VAL_ACC] >= threshold), None)
        if first is None:
            assert seconds is None
        else:
            assert seconds == pytest.approx(first[keys.TIME] - started, abs=2.0)


@pytest.mark.parametrize(("key", "value"), [("model.label_smoothing", "1.5"), ("model.net.width", "0")])
def test_bad_recipe_values_are_config_errors(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        run(compose(tmp_path, [*TINY_SIGNS, "logger=none", f"{key}={value}"]))


def test_time_to_accuracy_of_a_continued_run_counts_every_attempt():
    """Epoch 0 ended 30 s into a first attempt that ran 50 s; the run continued at t=1000 and epoch 1 ended 20
    s later: 0.9 was first reached 30 s into training, 0.95 after 50 + 20 s (the pause between attempts is not
    training time); a record without the first attempt's start counts the current attempt alone, from its
    start."""
    from visionlab.record.summary import time_to_milestones

    rows = [
        {keys.EPOCH: 0, keys.VAL_ACC: 0.91, keys.TIME: 130.0},
        {keys.EPOCH: 1, keys.VAL_ACC: 0.96, keys.TIME: 1020.0},
    ]
    both = time_to_milestones(rows, "classification", [(100.0, 50.0), (1000.0, 25.0)])
    assert both == {"val/acc>=0.9": 30.0, "val/acc>=0.95": 70.0, "val/acc>=0.97": None, "val/acc>=0.99": None}
    legacy = time_to_milestones(rows, "classification", [(None, 50.0), (1000.0, 25.0)])
    assert legacy == {
        "val/acc>=0.9": 20.0,
        "val/acc>=0.95": 20.0,
        "val/acc>=0.97": None,
        "val/acc>=0.99": None,
    }
