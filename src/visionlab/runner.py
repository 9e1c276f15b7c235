"""Build everything from a composed config, train/resume/evaluate, and always leave a complete run record."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger

from visionlab.errors import ConfigError, UserError
from visionlab.tracking.run_record import SUMMARY, RunRecord, write_json
from visionlab.tracking.wandb_logger import offline_run_dir
from visionlab.utils.precision import resolve_precision
from visionlab.utils.provenance import device_description, git_state, package_versions

log = logging.getLogger("visionlab")
WANDB_ID_FILE = "wandb_run_id.txt"


def _instantiate_group(group: DictConfig | None, what: str) -> list:
    objects = []
    for name, node in (group or {}).items():
        if node is None or "_target_" not in node:
            continue
        try:
            obj = hydra.utils.instantiate(node)
        except Exception as exc:
            raise ConfigError(f"{what}.{name}: cannot build {node.get('_target_')} ({exc})") from exc
        if obj is not None:
            objects.append(obj)
    return objects


def _instantiate(node: DictConfig, key: str, **kwargs):
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UserError):
            raise cause from None
        raise ConfigError(f"{key}: cannot build {node.get('_target_')}: {cause}") from exc


def _final_metrics(rows: list[dict]) -> dict:
    return {k: v for k, v in rows[-1].items() if "/" in k} if rows else {}


def _best_metrics(rows: list[dict], monitor: str, mode: str) -> dict:
    scored = [r for r in rows if r.get(monitor) is not None]
    if not scored:
        return {}
    best = (max if mode == "max" else min)(scored, key=lambda r: r[monitor])
    return {"epoch": int(best["epoch"]), **{k: v for k, v in best.items() if "/" in k}}


def run(cfg: DictConfig) -> dict:
    """Train (or resume, or only evaluate) as configured; returns the summary written to summary.json."""
    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.train and not cfg.ckpt_path:
        raise ConfigError("train=false evaluates a checkpoint: also pass ckpt_path=<run>/checkpoints/best.ckpt")
    if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist or is not a file.")

    pl.seed_everything(cfg.seed, workers=True)
    threads = cpu_threads(cfg.get("threads"))
    if threads:
        torch.set_num_threads(threads)
    with open_dict(cfg):
        cfg.trainer.precision = resolve_precision(cfg.trainer.get("precision", "auto"), cfg.trainer.accelerator)
        if cfg.get("logger") and cfg.logger.get("wandb"):
            sweep = _multirun()
            wandb_cfg = cfg.logger.wandb
            wandb_cfg.group = wandb_cfg.group or (cfg.sweep_name if sweep else cfg.experiment_name)
            wandb_cfg.job_type = wandb_cfg.job_type or (cfg.experiment_name if sweep else "train")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    OmegaConf.save(OmegaConf.create(resolved), output_dir / "config.yaml")

    datamodule = _instantiate(cfg.data, "data")
    datamodule.setup("fit")  # load and validate data before anything else is started
    model = _instantiate(cfg.model, "model")
    n_params = sum(p.numel() for p in model.parameters())

    resumed_id = (output_dir / WANDB_ID_FILE).read_text().strip() if cfg.ckpt_path and cfg.train and (
        output_dir / WANDB_ID_FILE).exists() else None
    if resumed_id and cfg.logger and cfg.logger.get("wandb"):
        with open_dict(cfg):
            cfg.logger.wandb.id = resumed_id
    loggers = _instantiate_group(cfg.get("logger"), "logger")
    record = RunRecord(output_dir)
    callbacks = _instantiate_group(cfg.get("callbacks"), "callbacks") + [record]
    if not loggers:  # Lightning refuses an LR monitor without a logger; metrics.csv records the LR anyway
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    if any(isinstance(lg, WandbLogger) for lg in loggers):
        callbacks.append(model.media_callback())
    trainer: pl.Trainer = _instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)

    for lg in loggers:
        lg.log_hyperparams({**resolved, "n_params": n_params})
    wandb_logger = next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
    if wandb_logger is not None and trainer.is_global_zero:
        (output_dir / WANDB_ID_FILE).write_text(wandb_logger.experiment.id)

    summary = {
        "experiment": cfg.experiment_name,
        "run_name": cfg.run_name,
        "task": getattr(model, "task", "unknown"),
        "seed": cfg.seed,
        "status": "running",
        "output_dir": str(output_dir),
        "overrides": _overrides(),
        "resumed_from": cfg.ckpt_path if cfg.train else None,
        "evaluated_checkpoint": None,
        "n_params": n_params,
        "monitor": cfg.monitor,
        "precision": cfg.trainer.precision,
        "device": device_description(),
        "git": git_state(),
        "versions": package_versions(),
        "data": datamodule.description,
        "test_split": "available" if datamodule.test_available else "unavailable",
    }
    error: BaseException | None = None
    test_metrics = None
    try:
        if cfg.train:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=False)
        if cfg.test:
            test_metrics = _test(cfg, trainer, model, datamodule, summary)
        summary["status"] = "completed"
    except UserError as exc:
        error = exc
        summary.update(status="failed", error=str(exc))
    except KeyboardInterrupt as exc:
        error = exc
        summary.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
    except Exception as exc:
        error = exc
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        if trainer.is_global_zero:
            _finish(summary, cfg, trainer, record, test_metrics, started, wandb_logger)
    if error is not None:
        raise error
    return summary


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"


def cpu_threads(requested: int | None) -> int | None:
    """Explicit ``threads``, or cores / n_jobs when the joblib launcher runs jobs side by side."""
    if requested:
        return int(requested)
    if not _multirun():
        return None
    from hydra.core.hydra_config import HydraConfig

    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs") if "joblib" in str(launcher.get("_target_", "")).lower() else None
    if n_jobs and n_jobs > 0:
        return max(1, (os.cpu_count() or 1) // n_jobs)
    return None


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _test(cfg, trainer, model, datamodule, summary) -> dict | None:
    if not datamodule.test_available:
        log.warning("No test split available for %s: skipping the test stage.", datamodule.description)
        return None
    ckpt = None
    if cfg.train:
        checkpoint = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)
        if checkpoint is not None and checkpoint.best_model_path:
            ckpt = checkpoint.best_model_path
    else:
        ckpt = cfg.ckpt_path
    summary["evaluated_checkpoint"] = ckpt or "final weights"
    results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=False, verbose=False)
    metrics = dict(results[0]) if results else {}
    model.save_test_artifacts(Path(cfg.paths.output_dir))
    return metrics


def _finish(summary, cfg, trainer, record, test_metrics, started, wandb_logger) -> None:
    output_dir = Path(cfg.paths.output_dir)
    rows = record.rows
    summary.update(
        epochs=len(rows) and int(rows[-1]["epoch"]) + 1,
        steps=trainer.global_step,
        final=_final_metrics(rows),
        best=_best_metrics(rows, cfg.monitor, cfg.monitor_mode),
        test={k: float(v) for k, v in test_metrics.items()} if test_metrics else None,
        wall_time_s=round(time.time() - started, 2),
        train_images_per_s=record.images_per_second and round(record.images_per_second, 1),
    )
    extra = getattr(trainer.lightning_module, "summary_extras", None)
    if callable(extra):
        summary.update(extra())
    objective = (summary["best"] or {}).get(cfg.monitor)
    summary["objective"] = objective
    if wandb_logger is not None:
        summary["wandb"] = {"id": wandb_logger.experiment.id, "mode": "offline" if wandb_logger._offline else "online"}
        run_dir = offline_run_dir(wandb_logger)
        summary["wandb"]["sync_command"] = f"wandb sync {run_dir}" if run_dir else None
        for key in ("best", "test"):
            for metric, value in (summary[key] or {}).items():
                if key == "best" and metric != "epoch" and "/" in metric:
                    wandb_logger.experiment.summary[f"best/{metric}"] = value
        wandb_logger.experiment.summary["n_params"] = summary["n_params"]
    write_json(output_dir / SUMMARY, summary)
    if wandb_logger is not None:
        import wandb

        wandb.finish(exit_code=0 if summary["status"] == "completed" else 1)
    _print_result(summary)


def _print_result(summary: dict) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    status = summary["status"]
    colour = "green" if status == "completed" else "red"
    console.print(f"[bold {colour}]{status}[/]: {summary['experiment']} (seed {summary['seed']})")
    console.print(f"run folder: {summary['output_dir']}")
    for key in ("best", "final", "test"):
        metrics = summary.get(key)
        if metrics:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            console.print(f"{key}: {shown}")
    if summary.get("test_split") == "unavailable":
        console.print("test: no test split available (see summary.json)")
    if summary.get("error"):
        console.print(f"[red]error:[/] {summary['error']}")
    wandb_info = summary.get("wandb") or {}
    if wandb_info.get("sync_command"):
        console.print(f"upload to W&B later with: {wandb_info['sync_command']}")
