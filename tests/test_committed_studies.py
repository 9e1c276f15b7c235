"""Every committed study page (``experiments/<study>/report*/``) is what today's code makes of the run records
committed beside it (``runs*/``), rebuilt with the command ``experiments/regenerate.py`` uses (the page's own
title, reference and baseline). The default suite compares report.json (every number, label and caveat); the
figures' bytes are compared in the slow suite, since drawing is ~97 % of a report's time (about a minute per
page here) and a PNG's bytes also change with the matplotlib build, not only with our code."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import shutil
import subprocess

import pytest

from helpers import REPO
from report_fixtures import write_report
from visionlab.report import readme

PAGES = sorted(p.parent for p in (REPO / "experiments").glob("*/report*/report.json"))
_spec = importlib.util.spec_from_file_location("regenerate", REPO / "experiments" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)


def _page_arguments(page) -> list[str]:
    """The report arguments ``experiments/regenerate.py`` rebuilds ``page`` with, less its output folder."""
    command = regenerate.page_command(page)
    arguments = command[command.index("visionlab.report") + 1 :]
    at = arguments.index("--out")
    del arguments[at : at + 2]
    return [str(REPO / a) if (REPO / a).exists() and not a.startswith("-") else a for a in arguments]


def mismatch(ours, theirs, where: str, rel: float = 1e-9) -> str | None:
    """Where two report.json trees differ, or None: floats within ``rel`` (a reduction's last bits differ
    across CPUs and library builds: 0.0017014915635422557 vs ...644), everything else (text, ints, keys,
    lengths) exact."""
    if isinstance(ours, float) and isinstance(theirs, float):
        same = (
            ours == theirs
            or math.isclose(ours, theirs, rel_tol=rel, abs_tol=1e-15)
            or (math.isnan(ours) and math.isnan(theirs))
        )
        return None if same else f"{where}: {ours!r} vs {theirs!r}"
    if type(ours) is not type(theirs):
        return f"{where}: {type(ours).__name__} {ours!r:.80} vs {type(theirs).__name__} {theirs!r:.80}"
    if isinstance(ours, dict):
        if list(ours) != list(theirs):
            return f"{where}: keys {sorted(set(ours) ^ set(theirs))}"
        return next((m for k in ours if (m := mismatch(ours[k], theirs[k], f"{where}.{k}", rel))), None)
    if isinstance(ours, list):
        if len(ours) != len(theirs):
            return f"{where}: {len(ours)} items vs {len(theirs)}"
        return next(
            (m for i, (a, b) in enumerate(zip(ours, theirs)) if (m := mismatch(a, b, f"{where}[{i}]", rel))),
            None,
        )
    return None if ours == theirs else f"{where}: {ours!r:.80} vs {theirs!r:.80}"


def _name(page) -> str:
    return f"{page.parent.name}/{page.name}"


def test_every_study_page_is_checked():
    """The pages of the studies whose READMEs the project quotes, the side pages included."""
    names = {_name(p) for p in PAGES}
    assert {"gtsrb_ablation/report", "isbi_unet_ablation/report", "camvid_unet/report"} <= names
    assert {"unet_recipe/report_thin", "unet_recipe/report_shift"} <= names


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_a_committed_study_page_rebuilds_from_its_committed_records(page, tmp_path):
    """Every number a committed study page shows comes from the run records committed beside it."""
    committed = json.loads((page / "report.json").read_text())
    _, rebuilt, _ = write_report(tmp_path / "again", *_page_arguments(page))
    for part in ("tasks", "caveats"):
        assert mismatch(rebuilt[part], committed[part], part) is None
    assert mismatch(rebuilt["page"][1:], committed["page"][1:], "page") is None


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_a_committed_study_page_redraws_the_same_figures(page, tmp_path):
    """Every committed figure is byte for byte what the code draws now from the committed records (same
    matplotlib build as the one that made the page: the PNG encoder's bytes differ across builds)."""
    write_report(tmp_path / "again", *_page_arguments(page), figures=True)

    def digests(folder):
        return {
            p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "figures").rglob("*.png"))
        }

    assert digests(tmp_path / "again") == digests(page)


def test_the_rebuild_comparison_tolerates_last_bits_only():
    """The committed-page check above: a last-digit float difference passes, anything else fails."""
    committed = {"noise": 0.0017014915635422644, "n": 3, "label": "x", "cells": [1.5, "a"]}
    assert mismatch({**committed, "noise": 0.0017014915635422557}, committed, "t") is None
    assert mismatch({**committed, "noise": 0.0017015}, committed, "t") == (
        "t.noise: 0.0017015 vs 0.0017014915635422644"
    )
    assert mismatch({**committed, "n": 4}, committed, "t") == "t.n: 4 vs 3"
    assert mismatch({**committed, "cells": [1.5]}, committed, "t") == "t.cells: 1 items vs 2"
    assert mismatch({**committed, "n": 3.0}, committed, "t") == "t.n: float 3.0 vs int 3"


def test_the_rebuild_uses_the_command_regenerate_uses():
    """The test and ``experiments/regenerate.py`` cannot drift apart: one command, the page's own title."""
    page = REPO / "experiments" / "unet_recipe" / "report_shift"
    arguments = _page_arguments(page)
    assert arguments[0] == str(REPO / "experiments" / "unet_recipe" / "runs_shift")
    assert (
        arguments[arguments.index("--title") + 1] == json.loads((page / "report.json").read_text())["title"]
    )


# ------------------------------------------------------------------ study READMEs = their report.json
STUDIES = sorted(p.parent.parent for p in (REPO / "experiments").glob("*/report/report.json"))


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_a_study_readme_copies_its_tables_from_report_json(study):
    text = (study / "README.md").read_text()
    numbers = json.loads((study / "report" / "report.json").read_text())
    ids = readme.marked(text)
    assert any(i.startswith("over-seeds:") for i in ids), f"{study.name}: README copies no over-seeds table"
    assert set(ids) <= set(readme.page_tables(numbers)), "a marked table the page does not have"
    assert readme.synced(text, numbers) == text, (
        f"{study.name}/README.md differs from report.json: run python -m visionlab.report.readme {study}"
    )


# ------------------------------------------------------------------ layout in a browser
_PROBE = """<script>window.addEventListener('load', () => { const b = document.body;
b.setAttribute('data-overflow', String(document.documentElement.scrollWidth > window.innerWidth));
b.setAttribute('data-scrolls', String(Array.from(document.querySelectorAll('.scroll')).some(
  d => d.scrollWidth > d.clientWidth)));
b.setAttribute('data-shrunk', String(Array.from(document.images).some(
  i => i.getBoundingClientRect().width < 0.75 * i.naturalWidth))); });</script></body>"""
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    not BROWSER,
    reason="Chromium is not installed (apt-get install chromium): the layout is checked where a browser is",
)
@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_a_committed_page_fits_a_900_px_window(page, tmp_path):
    """Nothing wider than the window, no table needing its scroll box, no figure shrunk below 75 % (its text
    stays readable)."""
    probe = tmp_path / "probe.html"
    probe.write_text((page / "report.html").read_text().replace("</body>", _PROBE))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=900,1000",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [BROWSER, *flags, "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert 'data-overflow="false"' in dom and 'data-scrolls="false"' in dom and 'data-shrunk="false"' in dom
