"""What a datamodule serves, stated once: classes and their names, channels, input size and how the splits
were made. The model config follows the data by interpolation (``num_classes: ${data.num_classes}``,
``in_channels: ${data.channels}``, ``input_size: ${data.input_size}``), each datamodule checks that its data
agrees with what its config states, and ``summary.json`` records the facts under ``data_facts``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from visionlab.config.errors import ConfigError

SPLIT_POLICIES = {
    "group": "whole groups (e.g. a sign's track) stay on one side; stratified by class",
    "stratified": "random, stratified by class",
    "random": "random (seeded permutation)",
    "contiguous": "blocks of consecutive cases at the end of an ordered stack, each after one unused gap "
    "case",
    "given": "the splits the data comes with",
}
# how a report names the validation split each policy makes ("validation (<name>)"); a group split is named by
# what its groups are (``DataFacts.groups``: "track" for GTSRB's tracks), so a random split is never called
# track-held-out
SPLIT_NAMES = {
    "group": "{groups}-held-out",
    "stratified": "random, stratified by class",
    "random": "random",
    "contiguous": "contiguous blocks",
    "given": "the data's own",
}


def validation_split_name(data_facts: dict, groups_unstated: str = "group") -> str | None:
    """``validation (track-held-out)``, ``validation (random, stratified by class)``: the validation split
    named from a run's ``summary.json`` ``data_facts`` (its split policy), or None when the record has no
    known policy. ``groups_unstated`` names the groups of a record written before ``groups`` was recorded."""
    policy = data_facts.get("split_policy") if isinstance(data_facts, dict) else None
    if policy not in SPLIT_NAMES:
        return None
    groups = data_facts.get("groups", groups_unstated)
    groups = groups if isinstance(groups, str) and groups.isidentifier() and len(groups) <= 40 else "group"
    return f"validation ({SPLIT_NAMES[policy].format(groups=groups)})"


@dataclass(frozen=True)
class DataFacts:
    task: str
    num_classes: int
    class_names: tuple[str, ...]
    channels: int
    input_size: tuple[int, int]  # (H, W) of the images the model receives
    split_policy: str  # a key of SPLIT_POLICIES: how validation (and test, when made) were split from train
    split: str = ""  # the split made, in words (sizes, seed, which cases)
    groups: str = ""  # what a group of the "group" policy is (e.g. "track"); "" for a plain group

    def record(self) -> dict:
        """``summary.json``'s ``data_facts``: plain values (``input_size`` an int for square inputs)."""
        height, width = self.input_size
        return {
            "task": self.task,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "channels": self.channels,
            "input_size": height if height == width else [height, width],
            "split_policy": self.split_policy,
            "split_policy_means": SPLIT_POLICIES.get(self.split_policy, ""),
            "split": self.split,
            **({"groups": self.groups} if self.groups else {}),
        }


def class_names_or_ids(class_names: Sequence | None, num_classes: int) -> tuple[str, ...]:
    """The stated names (``data.class_names``), else the class ids as names; a list of the wrong length is
    refused."""
    if class_names is None:
        return tuple(str(i) for i in range(num_classes))
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ConfigError(
            f"data.class_names={class_names!r} must be a list of names (index = label), or null."
        )
    if len(class_names) != num_classes:
        raise ConfigError(
            f"data.class_names has {len(class_names)} names but data.num_classes={num_classes}: give "
            "one name per class, in label order (or null for the ids)."
        )
    return tuple(str(name) for name in class_names)
