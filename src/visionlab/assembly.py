"""Build a run's parts from the composed config: datamodule, model, loggers, callbacks and trainer.

A ``_target_`` that cannot be built, or builds something that does not fit ``interfaces``, is a ConfigError
naming the key; a user error raised while building (e.g. a DataError from a bad file) passes through as is.
"""

from __future__ import annotations

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor

from visionlab.errors import ConfigError, UserError
from visionlab.interfaces import TaskDataModule, TaskModel, missing_members
from visionlab.run_record.metric_keys import TASKS


def instantiate(node: DictConfig, key: str, **kwargs):
    """Arguments arrive as plain lists and dicts (``_convert_="all"``), so a checkpoint's saved hyperparameters
    hold no OmegaConf objects and checkpoints load with ``weights_only=True``: a checkpoint is data, not code."""
    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UserError):
            raise cause from None
        raise ConfigError(f"{key}: cannot build {node.get('_target_')}: {cause}") from exc


def instantiate_group(group: DictConfig | None, key: str) -> list:
    """Every entry of a config group that has a ``_target_`` (null entries switch one off)."""
    return [obj for name, node in (group or {}).items() if node is not None and "_target_" in node
            if (obj := instantiate(node, f"{key}.{name}")) is not None]


def _check(obj, protocol: type, key: str, node: DictConfig):
    if not isinstance(obj, protocol):
        raise ConfigError(f"{key}._target_={node.get('_target_')} is not a visionlab {key}: it lacks "
                          f"{', '.join(missing_members(obj, protocol))} (see visionlab.interfaces).")
    return obj


def check_checkpoint_is_data(ckpt_path: str) -> None:
    """A checkpoint is loaded as data only (tensors and plain values, ``weights_only=True``): one that needs
    arbitrary Python objects to load is refused before anything runs, and nothing in it is executed."""
    import torch

    try:
        torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever fails to load as data is refused the same way
        lines = str(exc).splitlines()
        reason = next((line.split(" was not")[0].strip() for line in lines if "Unsupported global" in line),
                      f"{type(exc).__name__}: {lines[-1] if lines else exc}")
        raise ConfigError(f"ckpt_path={ckpt_path}: not a checkpoint visionlab can load as data only ({reason}). "
                          "Pass a checkpoint written by this version of visionlab (<run>/checkpoints/*.ckpt).") from None


def build_datamodule(cfg: DictConfig) -> TaskDataModule:
    """The datamodule, with its data loaded and validated before anything else is started."""
    datamodule = instantiate(cfg.data, "data")
    datamodule.setup("fit")
    return _check(datamodule, TaskDataModule, "data", cfg.data)


def build_model(cfg: DictConfig) -> TaskModel:
    """The model; the metric it will be judged by (``monitor``) must be one it logs."""
    model = _check(instantiate(cfg.model, "model"), TaskModel, "model", cfg.model)
    logged = TASKS[model.task].keys if model.task in TASKS else {cfg.monitor}
    if cfg.monitor not in logged:
        raise ConfigError(f"monitor={cfg.monitor} is not logged by a {model.task} model; it logs "
                          f"{', '.join(sorted(logged))}. Set monitor (and monitor_mode), or pick the model through "
                          "an experiment preset, which sets both.")
    return model


def build_trainer(cfg: DictConfig, model: TaskModel, loggers: list, record: pl.Callback) -> pl.Trainer:
    """The configured callbacks plus the run record and, with W&B, the model's media callback."""
    from visionlab.tracking.wandb_policy import find_wandb_logger

    callbacks = [*instantiate_group(cfg.get("callbacks"), "callbacks"), record]
    if not loggers:  # Lightning refuses an LR monitor without a logger; metrics.csv records the LR anyway
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    if find_wandb_logger(loggers) is not None and (media := model.media_callback()) is not None:
        callbacks.append(media)
    return instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
