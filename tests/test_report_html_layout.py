"""How the HTML page lets long table cells wrap: at a name's joints, never inside a number or a word."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from visionlab.report.render.document import Bullets, Document, Paragraph, Table, _cell, to_html

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


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


@pytest.mark.skipif(not BROWSER, reason="Chromium is not installed (apt-get install chromium)")
def test_a_long_run_path_in_a_sentence_or_a_list_breaks_instead_of_widening_a_900_px_page(tmp_path):
    """A caveat names a run by its folder (``sweep/experiment=…,seed=1,data.batch_size=16,…``): one
    unbreakable word of 100+ characters in a list item widened a committed page past the window."""
    path = "`seed_optimizers/" + ",".join(f"key_number_{i}=value_{i}" for i in range(8)) + "`"
    doc = Document("layout", [Paragraph(f"A run at {path}."), Bullets([f"diverged: {path}"])])
    doc.add(Table(["variant", "run"], [["cnn", path]]))
    probe = tmp_path / "page.html"
    probe.write_text(
        to_html(doc).replace(
            "</body>",
            "<script>window.addEventListener('load', () => document.body.setAttribute('data-overflow', "
            "String(document.documentElement.scrollWidth > window.innerWidth)));</script></body>",
        )
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=900,1000"]
    dom = subprocess.run(
        [BROWSER, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert 'data-overflow="false"' in dom
