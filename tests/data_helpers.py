"""Datamodules built from conf/data/*.yaml, the only home of their defaults (augmentation recipes
included)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]


def data_config(name: str, **overrides):
    """conf/data/<name>.yaml composed as `python train.py data=<name>` would, with ``overrides`` merged in."""
    from hydra import compose, initialize_config_dir

    import visionlab.cli.resolvers  # noqa: F401

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"data={name}", "paths.root_dir=/nonexistent", "paths.output_dir=/nonexistent/run"],
        )
    node = OmegaConf.to_container(cfg.data, resolve=True)
    return OmegaConf.merge(node, overrides)


def datamodule(name: str, **overrides):
    """An instantiated (not yet set-up) datamodule for conf/data/<name>.yaml, built as a run builds it (plain
    arguments; a value the datamodule refuses is its ConfigError)."""
    from visionlab.run.assembly import instantiate

    return instantiate(data_config(name, **overrides), "data")


def recipe(name: str, **overrides):
    """The training augmentation recipe a datamodule of conf/data/<name>.yaml uses, with ``overrides``: a dict
    for classification data, a (checked) ``SegmentationRecipe`` for segmentation data."""
    current = datamodule(name).recipe
    return {**current, **overrides} if isinstance(current, dict) else current.replace(**overrides)
