"""The U-Net paper's augmentation settings, listed once: one field per setting (the config key
``data.<field>``) with its check. Both backends read this object (``augment.SegmentationBatchAugment``, the
default, and ``albumentations_recipe.train_transform``, the per-sample reference), so a new setting is one
field here, its value in ``conf/data/common/seg.yaml`` (the one home of every default: no field has one) and
its use in each backend; the datamodule passes every ``data.<setting>`` through unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from visionlab.config.checks import expect, is_number, one_of
from visionlab.config.errors import ConfigError

# data.flip: flips and 90° turns, none, or left-right only (street scenes)
FLIPS = (True, False, "horizontal")
ELASTIC_KEYS = ("alpha", "sigma", "p")


def _check(valid: Callable[[Any], bool], expected: str, example: str) -> dict:
    return {"check": (valid, expected, example)}


def _non_negative(example: str) -> dict:
    return _check(lambda v: is_number(v) and v >= 0, "a number ≥ 0", example)


def _probability(example: str) -> dict:
    return _check(lambda v: is_number(v) and 0 <= v <= 1, "a probability in [0, 1]", example)


def _elastic(value) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == set(ELASTIC_KEYS)
        and all(is_number(value[key]) and value[key] >= 0 for key in ELASTIC_KEYS)
        and value["p"] <= 1
    )


@dataclass(frozen=True)
class SegmentationRecipe:
    """The training augmentation of a segmentation datamodule, in albumentations' order and meaning."""

    # elastic deformation: alpha = strength (px), sigma = smoothness of the field (px), p = its probability
    elastic: dict = field(
        metadata=_check(
            _elastic,
            "{alpha: ≥ 0, sigma: ≥ 0, p: in [0, 1]}",
            "data.elastic={alpha: 500, sigma: 12, p: 0.7}",
        )
    )
    flip: bool | str = field(
        metadata=_check(
            one_of(*FLIPS),
            "true (flips and 90° turns), horizontal (left-right only: street scenes) or false",
            "data.flip=horizontal",
        )
    )
    shift: float = field(metadata=_non_negative("data.shift=0.05"))  # ± fraction of the side
    rotate: float = field(metadata=_non_negative("data.rotate=10"))  # ± degrees
    scale: float = field(metadata=_non_negative("data.scale=0.05"))  # ± fraction, per axis
    p_affine: float = field(metadata=_probability("data.p_affine=0.7"))  # of the shift/rotate/scale step
    # RandomBrightnessContrast's limits, and the probability of that step
    brightness: float = field(metadata=_non_negative("data.brightness=0.1"))
    contrast: float = field(metadata=_non_negative("data.contrast=0.1"))
    p_intensity: float = field(metadata=_probability("data.p_intensity=0.8"))
    # ± fraction: x ** γ with γ in [1 - gamma, 1 + gamma] (RandomGamma), after brightness/contrast
    gamma: float = field(
        metadata=_check(lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)", "data.gamma=0.2")
    )
    p_gamma: float = field(metadata=_probability("data.p_gamma=0.3"))  # of the gamma step

    def __post_init__(self):
        """Every setting checked (a ConfigError naming ``data.<setting>``), numbers as floats."""
        for setting in dataclasses.fields(self):
            value = getattr(self, setting.name)
            valid, expected, example = setting.metadata["check"]
            expect(f"data.{setting.name}", value, valid, expected, example)
            if setting.name == "elastic":
                value = {key: float(value[key]) for key in ELASTIC_KEYS}
            elif setting.name != "flip":
                value = float(value)
            object.__setattr__(self, setting.name, value)

    @classmethod
    def from_config(cls, settings: Mapping) -> SegmentationRecipe:
        """The recipe of a data config's settings (every one given: the defaults live in conf/data)."""
        names = [setting.name for setting in dataclasses.fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise ConfigError(
                f"data.{unknown[0]} is not a setting of a segmentation datamodule; its augmentation takes "
                f"{', '.join(names)}."
            )
        missing = [name for name in names if name not in settings]
        if missing:
            raise ConfigError(
                f"data.{missing[0]} is missing: a segmentation data config states every augmentation "
                "setting (conf/data/common/seg.yaml holds them; add it to your data config)."
            )
        return cls(**{name: settings[name] for name in names})

    def replace(self, **changes) -> SegmentationRecipe:
        """This recipe with ``changes`` (checked as any recipe)."""
        return dataclasses.replace(self, **changes)

    def off(self) -> SegmentationRecipe:
        """The recipe that leaves every image and mask as it is (``data.augment=false``)."""
        return self.replace(
            elastic={"alpha": 0.0, "sigma": 1.0, "p": 0.0},
            flip=False,
            shift=0.0,
            rotate=0.0,
            scale=0.0,
            p_affine=0.0,
            brightness=0.0,
            contrast=0.0,
            p_intensity=0.0,
            gamma=0.0,
            p_gamma=0.0,
        )
