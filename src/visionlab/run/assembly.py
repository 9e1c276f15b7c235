"""Build a run's parts from the composed config: datamodule, model, loggers, callbacks and trainer.

A ``_target_`` that cannot be built, or builds something that does not fit ``interfaces``, is a ConfigError
naming the key; a user error raised while building (e.g. a DataError from a bad file) passes through as is.
"""

from __future__ import annotations

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.callbacks.progress import ProgressBar
from pytorch_lightning.plugins.environments import SLURMEnvironment

from visionlab.config.errors import ConfigError, UserError
from visionlab.record.checkpoint_files import AtomicCheckpointIO
from visionlab.record.metric_keys import TASKS
from visionlab.run.checkpoints import CheckpointOrigin
from visionlab.run.signals import KeepStopSignals
from visionlab.tasks.protocol import TaskDataModule, TaskModel, missing_members


def instantiate(node: DictConfig, key: str, **kwargs):
    """Arguments arrive as plain lists and dicts (``_convert_="all"``), so a checkpoint's saved
    hyperparameters hold no OmegaConf objects and checkpoints load with ``weights_only=True``: a checkpoint is
    data, not code."""
    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UserError):
            raise cause from None
        raise ConfigError(f"{key}: cannot build {node.get('_target_')}: {cause}") from exc


def instantiate_group(group: DictConfig | None, key: str) -> list:
    """Every entry of a config group that has a ``_target_`` (null entries switch one off)."""
    return [
        obj
        for name, node in (group or {}).items()
        if node is not None and "_target_" in node
        if (obj := instantiate(node, f"{key}.{name}")) is not None
    ]


def _check(obj, protocol: type, key: str, node: DictConfig):
    if not isinstance(obj, protocol):
        raise ConfigError(
            f"{key}._target_={node.get('_target_')} is not a visionlab {key}: it lacks "
            f"{', '.join(missing_members(obj, protocol))} (see visionlab.tasks.protocol)."
        )
    return obj


def build_datamodule(cfg: DictConfig):
    """The datamodule, built but not set up: its values are checked now, its data is read by
    ``read_data``, once the run's folder can record a failure to read it."""
    return instantiate(cfg.data, "data")


def read_data(cfg: DictConfig, datamodule) -> TaskDataModule:
    """Load and validate the datamodule's data before anything else is started."""
    datamodule.setup("fit")
    return _check(datamodule, TaskDataModule, "data", cfg.data)


def build_model(cfg: DictConfig) -> TaskModel:
    """The model; the metric it will be judged by (``monitor``) must be one it logs."""
    model = _check(instantiate(cfg.model, "model"), TaskModel, "model", cfg.model)
    logged = TASKS[model.task].keys if model.task in TASKS else {cfg.monitor}
    if cfg.monitor not in logged:
        raise ConfigError(
            f"monitor={cfg.monitor} is not logged by a {model.task} model; it logs "
            f"{', '.join(sorted(logged))}. Set monitor (and monitor_mode), or pick the model through "
            "an experiment preset, which sets both."
        )
    return model


def build_trainer(
    cfg: DictConfig, model: TaskModel, loggers: list, record: pl.Callback, precision: str | None = None
) -> pl.Trainer:
    """The configured callbacks plus the run record and, with a tracker that shows media (W&B), the model's
    media callback; ``precision``:
    the run plan's (what ``trainer.precision=auto`` stands for here), the config's when None."""
    from visionlab.tracking.plugins import trackers

    callbacks = [
        *instantiate_group(cfg.get("callbacks"), "callbacks"),
        record,
        CheckpointOrigin(cfg.experiment_name, stamped_inputs(cfg)),
        KeepStopSignals(),
    ]
    if not loggers:  # Lightning refuses an LR monitor without a logger; metrics.csv records the LR anyway
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    if (
        cfg.trainer.get("enable_progress_bar") is False
    ):  # the user's "no bar" wins over the callbacks group's bar
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    if any(tracker.shows_media for tracker in trackers(loggers)) and (media := model.media_callback()):
        callbacks.append(media)
    plugins = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():  # our SIGUSR1 handler requeues; Lightning's saves a mid-epoch checkpoint
        try:
            plugins.append(SLURMEnvironment(auto_requeue=False))
        except RuntimeError as exc:  # e.g. `--ntasks` without `--ntasks-per-node`: Lightning says what to use
            raise ConfigError(f"SLURM job settings: {exc}") from None
    chosen = {} if precision is None else {"precision": precision}
    return instantiate(
        cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, plugins=plugins, **chosen
    )


def stamped_inputs(cfg: DictConfig) -> dict | None:
    """The facts of the model's inputs for the checkpoints' stamp (None for data visionlab cannot read files
    of)."""
    from omegaconf import OmegaConf

    from visionlab.inference.loading import input_facts

    try:
        return input_facts(
            OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.data, resolve=True)
        ).record()
    except (UserError, ValueError, TypeError):
        return None


def spawns_ranks(trainer: pl.Trainer) -> bool:
    """Whether Lightning will start the other DDP ranks itself, by re-running this command."""
    from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    launcher = getattr(trainer.strategy, "launcher", None)
    return (
        isinstance(launcher, _SubprocessScriptLauncher)
        and launcher.num_processes * launcher.num_nodes > 1
        and not launcher.cluster_environment.creates_processes_externally
    )
