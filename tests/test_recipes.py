"""Training recipes: the seed presets' exact optimizers, the per-step schedule, time-to-accuracy in the record."""

import pytest

from helpers import TINY_SIGNS, compose
from visionlab.errors import ConfigError
from visionlab.run_record import metric_keys as keys
from visionlab.run_record.folder import RunFolder
from visionlab.runner import run


@pytest.mark.parametrize(("experiment", "target", "settings"), [
    ("cnn_baseline", "torch.optim.Adam", {"lr": 1e-3, "eps": 0.1}),
    ("cnn_sgd", "torch.optim.SGD", {"lr": 1e-3, "momentum": 0.0}),  # optim.SGD(net.parameters(), lr=0.001)
    ("cnn_rprop", "torch.optim.Rprop", {"lr": 1e-3}),  # optim.Rprop(net.parameters(), lr=0.001)
])
def test_seed_presets_swap_exactly_the_seeds_optimizers(tmp_path, experiment, target, settings):
    cfg = compose(tmp_path, [f"experiment={experiment}"])
    assert cfg.model.optimizer._target_ == target
    for key, value in settings.items():
        assert cfg.model.optimizer[key] == pytest.approx(value), key
    assert cfg.model.net.width == 1.0 and cfg.model.get("scheduler") is None
    assert cfg.trainer.max_epochs >= 50 and cfg.callbacks.early_stopping.monitor == "val/acc"


def test_per_step_schedule_runs_and_time_to_accuracy_is_recorded(tmp_path):
    summary = run(compose(tmp_path, [*TINY_SIGNS, "logger=none", "test=false", "trainer.max_epochs=3",
                                     "model/scheduler=warmup_cosine", "model.optimizer.lr=0.01",
                                     "model.scheduler.warmup_epochs=0"]))
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
