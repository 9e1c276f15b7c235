"""What run records written before the package renovation carry under former names, mapped to today's.

A run folder's ``config.yaml`` stores the dotted path of every class it was built from. The renovation moved
those classes (``visionlab.models.classifier`` became ``visionlab.tasks.classification.module`` and so on),
and records from before ``model.net`` kept the network's arguments directly under ``model``. Such a record
would be refused as "not a visionlab model" by ``ckpt_path=<run folder>``, ``visionlab-predict`` and the
report's architecture card, or its network read as the default one. Reading a record goes through
``current_names``: the tables below, applied at read time, never written back into the user's folder. Only
exact former names are rewritten; anything else stays as it is and meets the usual allow-list."""

from __future__ import annotations

_CLASSIFIER = "visionlab.tasks.classification.module.ClassificationModule"
_SEGMENTER = "visionlab.tasks.segmentation.module.SegmentationModule"
FORMER_TARGETS = {
    "visionlab.models.classifier.ClassificationModule": _CLASSIFIER,
    "visionlab.models.segmenter.SegmentationModule": _SEGMENTER,
    "visionlab.models.schedules.warmup_cosine": "visionlab.tasks.schedules.warmup_cosine",
    "visionlab.checkpoints.RunModelCheckpoint": "visionlab.run.checkpoints.RunModelCheckpoint",
    "visionlab.sweeps.SweepIndexCallback": "visionlab.cluster.sweep_callback.SweepIndexCallback",
    "visionlab.tracking.wandb_logger.make_wandb_logger": "visionlab.tracking.wandb.logger.make_wandb_logger",
}
# records from before model.net: the network each model class built (its type and label, as model.net holds
# them today), and its arguments that sat under model
FORMER_NETWORK_ARGUMENTS = {
    _CLASSIFIER: ("seed_cnn", "cnn", ("activation", "batch_norm", "width")),
    _SEGMENTER: ("unet", "unet", ("features_start", "depth", "up_mode", "activation", "batch_norm")),
}


def _current_targets(node: object) -> object:
    if isinstance(node, dict):
        return {
            key: FORMER_TARGETS.get(value, value)
            if key == "_target_" and isinstance(value, str)
            else _current_targets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_current_targets(item) for item in node]
    return node


def _current_model(model: dict) -> dict:
    """A ``model`` section without ``net`` whose class built a fixed network: its network's arguments moved
    from ``model.<key>`` to ``model.net.<key>`` (with the ``type`` and ``label`` of the network it built)."""
    target = model.get("_target_")
    if "net" in model or not isinstance(target, str) or target not in FORMER_NETWORK_ARGUMENTS:
        return model
    kind, label, keys = FORMER_NETWORK_ARGUMENTS[target]
    net = {"type": kind, "label": label, **{key: model[key] for key in keys if key in model}}
    return {**{key: value for key, value in model.items() if key not in keys}, "net": net}


def current_names(config: object) -> object:
    """A parsed run config with every former ``_target_`` replaced by its current name and a pre-``model.net``
    model section in today's layout (a new object; the argument is left as it is)."""
    config = _current_targets(config)
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        config["model"] = _current_model(config["model"])
    return config
