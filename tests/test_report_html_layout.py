"""How the HTML page lets long table cells wrap: at a name's joints, never inside a number or a word."""

from __future__ import annotations

from visionlab.report.render import _cell


def test_long_names_wrap_at_their_joints_and_numbers_stay_whole():
    cell = _cell("r2_intensity_dark_far_tta `visionlab.tasks.schedules.warmup_cosine` 95.35 ± 0.42 %")
    assert "r2_<wbr>intensity_<wbr>dark_<wbr>far_<wbr>tta" in cell
    assert "<code>visionlab.<wbr>tasks.<wbr>schedules.<wbr>warmup_<wbr>cosine</code>" in cell
    assert "95.35\u00a0±\u00a00.42\u00a0%" in cell  # a number keeps its decimals, its spread and its unit


def test_a_short_cell_and_markup_are_left_alone():
    assert _cell("cnn_sgd") == "<td>cnn_sgd</td>"  # short cells never wrap at all
    cell = _cell('a "quoted_value" <b>not a tag</b> and more text')
    assert "&lt;b&gt;" in cell and "<b>" not in cell  # escaped before the break opportunities go in
    assert "quoted_<wbr>value" in cell
