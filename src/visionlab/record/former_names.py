"""The ``_target_`` names run records written before the package renovation carry, mapped to today's.

A run folder's ``config.yaml`` stores the dotted path of every class it was built from. The renovation moved
those
classes (``visionlab.models.classifier`` became ``visionlab.tasks.classification.module`` and so on), so a
record
from before it would be refused as "not a visionlab model" by ``ckpt_path=<run folder>``,
``visionlab-predict`` and
the report's architecture card. Reading a record goes through ``current_names``: one table, applied at read
time,
never written back into the user's folder. Only exact former names are rewritten; anything else stays as it
is and
meets the usual allow-list.
"""

from __future__ import annotations

_CLASSIFIER = "visionlab.tasks.classification.module.ClassificationModule"
FORMER_TARGETS = {
    "visionlab.models.classifier.ClassificationModule": _CLASSIFIER,
    "visionlab.models.segmenter.SegmentationModule": "visionlab.tasks.segmentation.module.SegmentationModule",
    "visionlab.models.schedules.warmup_cosine": "visionlab.tasks.schedules.warmup_cosine",
    "visionlab.checkpoints.RunModelCheckpoint": "visionlab.run.checkpoints.RunModelCheckpoint",
    "visionlab.sweeps.SweepIndexCallback": "visionlab.cluster.sweep_callback.SweepIndexCallback",
    "visionlab.tracking.wandb_logger.make_wandb_logger": "visionlab.tracking.wandb.logger.make_wandb_logger",
}


def current_names(node: object) -> object:
    """``node`` (a parsed config) with every former ``_target_`` replaced by its current name (a new
    object)."""
    if isinstance(node, dict):
        return {
            key: FORMER_TARGETS.get(value, value)
            if key == "_target_" and isinstance(value, str)
            else current_names(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [current_names(item) for item in node]
    return node
