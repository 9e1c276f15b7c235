"""The architecture card is drawn for the input the run's network saw, rectangular inputs included."""

from __future__ import annotations

from visionlab.report.render.arch_card import model_input_shape

SEGMENTER = "visionlab.tasks.segmentation.module.SegmentationModule"


def test_a_rectangular_input_is_carded_at_its_own_height_and_width():
    """CamVid at 120×160 was carded as 3×256×256 (the two-number size was not read)."""
    cfg = {"model": {"_target_": SEGMENTER, "in_channels": 3, "input_size": [120, 160]}, "data": {}}
    assert model_input_shape(cfg) == (3, 120, 160)


def test_a_square_size_from_the_data_and_the_default_without_one():
    assert model_input_shape({"model": {"_target_": SEGMENTER}, "data": {"image_size": 128}}) == (1, 128, 128)
    assert model_input_shape({"model": {"_target_": SEGMENTER, "input_size": "big"}, "data": {}}) == (
        1,
        256,
        256,
    )
