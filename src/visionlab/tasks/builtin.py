"""The tasks visionlab ships, registered like any plug-in (``tasks.registry``). Their report sections are
named as "module:attribute" so that registering imports no report code (the runner registers tasks too)."""

from __future__ import annotations

from visionlab.record import metric_keys as keys
from visionlab.record.layout import (
    CONFUSION,
    MISCLASSIFIED,
    PER_CLASS_ACCURACY,
    QUALITATIVE,
    QUALITATIVE_CASES,
    TEST_CASES,
    VAL_CONFUSION,
    VAL_MISCLASSIFIED,
    VAL_PER_CLASS_ACCURACY,
)
from visionlab.tasks.registry import Task, register_task

SEGMENTATION_MEDIA = (
    keys.MEDIA_VAL_PREDICTIONS,
    keys.MEDIA_TEST_CASES_TABLE,
    *(keys.media_test_case(name) for name in QUALITATIVE_CASES),
)
CLASSIFIER = "visionlab.tasks.classification.module.ClassificationModule"
SEGMENTER = "visionlab.tasks.segmentation.module.SegmentationModule"

register_task(
    Task(
        name=keys.CLASSIFICATION.task,
        metrics=keys.CLASSIFICATION,
        modules=(CLASSIFIER,),
        data_modules=("visionlab.data.classification.",),
        model_hint="model=cnn (or an experiment=cnn_* preset), monitor=val/acc",
        record_files=(
            CONFUSION,
            VAL_CONFUSION,
            PER_CLASS_ACCURACY,
            VAL_PER_CLASS_ACCURACY,
            MISCLASSIFIED,
            VAL_MISCLASSIFIED,
        ),
        report="visionlab.tasks.classification.report:REPORT",
        media="visionlab.tracking.wandb.media:ClassificationMedia",
        media_keys=(
            keys.MEDIA_AUGMENTED_INPUTS,
            keys.MEDIA_CONFUSION,
            keys.MEDIA_MISCLASSIFIED,
            keys.MEDIA_VAL_MISCLASSIFIED,
        ),
    )
)
register_task(
    Task(
        name=keys.SEGMENTATION.task,
        metrics=keys.SEGMENTATION,
        modules=(SEGMENTER,),
        data_modules=("visionlab.data.segmentation.",),
        model_hint="experiment=unet_baseline (the U-Net with its loss and val/f1), or model=unet "
        "monitor=val/f1 monitor_mode=max",
        record_files=(TEST_CASES, QUALITATIVE),
        report="visionlab.tasks.segmentation.report:REPORT",
        input_defaults=(1, 256),
        media="visionlab.tracking.wandb.media:SegmentationMedia",
        media_keys=SEGMENTATION_MEDIA,
    )
)
register_task(
    Task(
        name=keys.MULTICLASS_TASK,
        metrics=keys.MULTICLASS_SEGMENTATION,
        modules=(SEGMENTER,),  # the same module with data.num_classes > 2: its summary.json says which
        record_files=(TEST_CASES, QUALITATIVE, CONFUSION),
        report="visionlab.tasks.segmentation.report_classes:REPORT",
        input_defaults=(1, 256),
        media="visionlab.tracking.wandb.media:SegmentationMedia",
        media_keys=SEGMENTATION_MEDIA,
    )
)
