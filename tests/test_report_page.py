"""A report page on hand-made sweeps: caveats first, honest scores, significance-only bold, the reference side
by side, classification and segmentation detail, collapsed cards, escaping, a rebuild from copied records,
layout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from helpers import REPO
from report_fixtures import classification_run, segmentation_run, write_report
from visionlab.report.render import escape

REFERENCE = REPO / "experiments" / "reference" / "seed_gtsrb_cnn.yaml"
BASELINE = {
    1: [0.20, 0.35, 0.50],
    2: [0.20, 0.30, 0.48],
    3: [0.25, 0.40, 0.53],
}  # still rising at the last epoch
SGD = {1: [0.90, 0.95, 0.94], 2: [0.90, 0.96, 0.95], 3: [0.91, 0.955, 0.95]}
RPROP = {1: [0.45, 0.30, 0.20], 2: [0.60, 0.40, 0.30], 3: [0.30, 0.10, 0.05]}  # seed 3 diverged


@pytest.fixture(scope="module")
def cls_sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cls")
    for seed in (1, 2, 3):
        classification_run(root, "cnn_baseline", seed, BASELINE[seed])
        classification_run(
            root,
            "cnn_sgd",
            seed,
            SGD[seed],
            commit="b" * 40 if seed == 3 else "a" * 40,
            dirty=seed == 3,
            lr=0.01,
        )
        classification_run(
            root,
            "cnn_rprop",
            seed,
            RPROP[seed],
            health={"status": "diverged", "epoch": 1, "reason": "val/loss = inf at epoch 1"}
            if seed == 3
            else None,
        )
    return root


_report = write_report


@pytest.fixture(scope="module")
def cls_report(cls_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return (
        out,
        *_report(
            out,
            str(cls_sweep),
            "--reference",
            str(REFERENCE),
            "--copy-records",
            str(out / "runs"),
            figures=True,
        ),
    )


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n")[1].split("\n## ")[0]


def test_summary_contents_and_caveats_come_first(cls_report):
    _, markdown, numbers, page = cls_report
    assert markdown.index("## Summary") < markdown.index("## Caveats") < markdown.index("## Results")
    assert "- [Caveats](#caveats)" in markdown and '<a href="#caveats">' in page and 'id="caveats"' in page
    caveats = _section(markdown, "Caveats")
    assert "have **no test split**" in caveats and "**picked on that same split**" in caveats
    assert "cnn_baseline: trained 3 epochs (cap 3); 3 too short (or without a curve) to judge." in caveats
    assert "**diverged** at epoch 2: cnn_rprop seed 3 (val/loss = inf at epoch 1;" in caveats
    assert "The runs come from 2 commits: `aaaaaaaaaa`, `bbbbbbbbbb`" in caveats
    assert "1 of 9 runs ran on a **dirty** working tree" in caveats
    assert "Training length: not stated, so how long this study trained against it is unknown" in caveats
    assert numbers["caveats"] and all(escape.no_tags(item) in markdown for item in numbers["caveats"])
    summary = _section(markdown, "Summary")
    assert (
        "cnn_sgd: 95.50 ± 0.50 % accuracy (n = 3); Δ +45.17 pp [+39.22, +51.11] pp, **significant** (Holm p"
        in summary
    )
    assert (
        "cnn_rprop: 52.50 ± 10.61 % accuracy (n = 2); Δ +2.17 pp [-80.16, +84.49] pp, not significant (Holm p"
        in summary
    )


def test_best_and_final_side_by_side_and_bold_only_for_significance(cls_report):
    _, markdown, numbers, _ = cls_report
    assert "| cnn_sgd | 1 | completed | 95.00 % | 2 / 3 | 94.00 % | too short to judge |" in markdown
    assert (
        "Every score is on validation (track-held-out), at the best epoch **picked on that same split**"
        in markdown
    )
    assert "| cnn_rprop | 3 | completed; **diverged** at epoch 2 |" in markdown
    by = {v["variant"]: v for v in numbers["tasks"]["classification"]["variants"]}
    base, sgd, rprop = (by[v] for v in ("cnn_baseline", "cnn_sgd", "cnn_rprop"))
    assert (
        rprop["n"] == 2 and rprop["n_runs"] == 3 and rprop["values"] == [0.45, 0.6]
    )  # diverged seed left out
    assert sgd["finals"] == [0.94, 0.95, 0.95]
    a, b = np.array(sgd["values"]), np.array(base["values"])
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * np.sqrt(va + vb)
    assert sgd["ci"] == pytest.approx([a.mean() - b.mean() - half, a.mean() - b.mean() + half])
    assert sgd["p_value"] < 0.05 <= rprop["p_value"] and sgd["significant"] and not rprop["significant"]
    over = _section(markdown, "Results (classification)").split("### Over seeds")[1].split("###")[0]
    rows = {
        line.split(" | ")[0][2:]: line.split(" | ") for line in over.splitlines() if line.startswith("| cnn")
    }
    assert rows["cnn_sgd"][5].startswith("**+45.17 pp**") and "**" not in rows["cnn_rprop"][5]
    assert not any("**" in row[2] for row in rows.values())  # never a mean or a std
    assert rows["cnn_rprop"][1] == "2 of 3"
    assert (
        "| cnn_baseline | CPU (2 threads) | 3 | 102 s (101 s–103 s) | 1,000 (1,000–1,000) | — | bf16-mixed |"
        in markdown
    )  # cost per variant and device


def test_reference_trials_beside_this_study(cls_report):
    _, markdown, numbers, _ = cls_report
    assert (
        "| cnn_baseline | seed study | accuracy on the seed's test images | 95.89 % | 95.82 % | 95.88 % | "
        "95.86 % |" in markdown
    )
    reference = numbers["tasks"]["classification"]["reference"]
    row = next(r for r in reference["side_by_side"] if r["variant"] == "cnn_sgd")
    assert (
        row["reference"] == [0.9089] and row["ours"] == [0.95, 0.96, 0.955] and row["ours_key"] == "val/acc"
    )
    # validation scores against the seed's test images: side by side, never a difference between them
    assert reference["comparable"] is False and reference["absolute"] == []
    assert "Δ this study − reference" not in markdown
    assert (
        "| cnn_sgd | this study | accuracy (val/acc; validation (track-held-out), best epoch picked on it) | "
        "95.00 % | 96.00 % | 95.50 % | 95.50 % |"
    ) in markdown
    effect = next(r for r in reference["effects"] if r["variant"] == "cnn_sgd")
    assert effect["reference_delta"] == pytest.approx(0.9089 - np.mean([0.9589, 0.9582, 0.9588]))
    assert effect["reference_ci"] is None  # one seed trial: no spread, no interval
    assert effect["delta"] == pytest.approx(0.955 - np.mean([0.50, 0.48, 0.53]))


def test_classification_detail_on_validation_and_collapsed_card(cls_report):
    out, markdown, numbers, _ = cls_report
    assert "cnn_sgd: worst classes on validation (best epoch): 7 Speed limit (100km/h) (" in markdown
    detail = numbers["tasks"]["classification"]["detail"]["cnn_sgd"]
    assert detail["split"] == "validation" and detail["seeds_summed"] == 3
    assert detail["worst_classes"][0]["class"] == 7
    assert (out / "figures" / "misclassified_cnn_sgd.png").stat().st_size > 0
    assert "misclassified validation (best epoch) images, true → predicted class (seed)" in markdown
    (card,) = numbers["cards"]
    assert (
        card["variants"] == ["cnn_baseline", "cnn_rprop", "cnn_sgd"]
        and card["traits"]["activation"] == "ReLU"
    )
    assert "### cnn_baseline, cnn_rprop, cnn_sgd" in markdown and "One card for 3 variants" in markdown


def test_every_number_on_the_page_is_in_report_json(cls_report):
    _, markdown, numbers, _ = cls_report
    held = json.dumps(numbers, ensure_ascii=False)
    text = re.sub(r"\(figures/[^)]*\)", "", markdown)
    for number in set(re.findall(r"[-+]?\d[\d,]*\.?\d*", text)):
        assert number in held, number


def test_the_report_rebuilds_from_the_copied_records_and_without_figures_holds_the_same_numbers(
    cls_report, tmp_path
):
    out, markdown, numbers, _ = cls_report
    assert not list((out / "runs").rglob("*.ckpt"))
    again = tmp_path / "again"
    text, rebuilt, page = _report(again, str(out / "runs"), "--reference", str(REFERENCE))  # --no-figures
    assert rebuilt["tasks"] == numbers["tasks"] and rebuilt["page"][1:] == numbers["page"][1:]
    # no figure is drawn, and each one's place says so with its caption
    figures = [block for block in numbers["page"] if "figure" in block]
    assert len(figures) >= 3 and all(f"figures/{f['figure']}" in markdown for f in figures)
    assert not (again / "figures").exists() and "<img" not in page and "figures/" not in text
    assert text.count("Figure not drawn (the report was written with `--no-figures`): ") == len(figures)
    assert page.count('<p class="figure-skipped">') == len(figures)
    assert all(f["caption"] in text for f in figures)


@pytest.mark.parametrize("figures", [True, False], ids=["figures", "no_figures"])
def test_run_record_text_is_escaped(tmp_path, figures):
    name = "x<script>alert(1)</script>**b**`c"
    classification_run(tmp_path / "runs", name, 1, [0.5, 0.6])
    markdown, _, page = _report(tmp_path / "out", str(tmp_path / "runs"), figures=figures)
    assert "<script>" not in page and "&lt;script&gt;" in page and "<strong>b</strong>" not in page
    assert r"\*\*b\*\*\`c" in markdown
    assert ("<img" in page) is figures  # both figure paths: the caption under a figure, or in its place


def test_segmentation_both_classes_trivial_rows_per_case_and_overlays(tmp_path):
    trivial = [0.88, 0.90, 0.86, 0.92]
    cases = {
        "unet_baseline": ([0.90, 0.93, 0.91, 0.95], [0.60, 0.70, 0.65, 0.72]),
        "unet_elu": ([0.92, 0.94, 0.93, 0.96], [0.65, 0.71, 0.70, 0.75]),
    }
    for variant, (f1, bg) in cases.items():
        for seed in (1, 2):
            segmentation_run(tmp_path / "runs", variant, seed, f1, bg, trivial)
    markdown, numbers, _ = _report(tmp_path / "out", str(tmp_path / "runs"), figures=True)
    detail = numbers["tasks"]["segmentation"]["detail"]
    f = np.array(trivial)
    m = f / (2 - f)
    b = 1 - m
    assert detail["classes"]["all-foreground (trivial)"]["test/f1"] == pytest.approx(f.mean())
    assert detail["classes"]["all-foreground (trivial)"]["test/f1_bg"] == 0
    assert detail["classes"]["all-background (trivial)"]["test/f1_bg"] == pytest.approx(
        np.mean(2 * b / (1 + b))
    )
    assert detail["classes"]["unet_elu"]["test/f1_bg"] == pytest.approx(np.mean(cases["unet_elu"][1]))
    assert (
        f"| everything foreground (trivial) | {f.mean():.4f} | {m.mean():.4f} | 0.0000 | 0.0000 |" in markdown
    )
    # per case: both classes of each variant, then the trivial score; how often a variant is above, no p-value
    assert "| 3 | 0.7200 | 0.9500 | 0.7500 | 0.9600 | 0.9200 |" in markdown
    versus = {(r["variant"], r["class"]): r for r in detail["per_case"]["versus"]}
    assert versus[("unet_elu", 1)]["higher"] == 4 and versus[("unet_elu", 1)]["mean_delta"] == pytest.approx(
        0.015
    )
    assert "paired" not in json.dumps(detail) and "p (paired" not in markdown
    assert detail["cases_shown"]["unet_elu"]["worst"] == {"index": 0, "f1": 0.92}
    assert "red = predicted foreground where the truth is background" in markdown
    assert (tmp_path / "out" / "figures" / "segmentation_cases_unet_elu.png").stat().st_size > 0


def test_a_record_with_the_three_worst_cases_shows_them_and_an_older_record_its_one(tmp_path):
    f1 = [0.91, 0.62, 0.95, 0.58, 0.88, 0.62]
    segmentation_run(tmp_path / "runs", "new", 1, f1, [0.9] * 6, [0.8] * 6, worst=3)
    segmentation_run(tmp_path / "runs", "old", 1, f1, [0.9] * 6, [0.8] * 6)
    markdown, numbers, _ = _report(tmp_path / "out", str(tmp_path / "runs"), figures=True)
    shown = numbers["tasks"]["segmentation"]["detail"]["cases_shown"]
    assert {n: c["index"] for n, c in shown["new"].items()} == {
        "fixed": 0,
        "best": 2,
        "worst": 3,
        "worst_2": 1,
        "worst_3": 5,
    }
    assert {n: c["index"] for n, c in shown["old"].items()} == {"fixed": 0, "best": 2, "worst": 3}
    assert "new: fixed, best and 3 worst test cases (by foreground F1)" in markdown
    assert "old: fixed, best and worst test case (by foreground F1)" in markdown
    from matplotlib.image import imread

    heights = {
        v: imread(tmp_path / "out" / "figures" / f"segmentation_cases_{v}.png").shape[0] for v in shown
    }
    assert heights["new"] == pytest.approx(
        heights["old"] * (2.1 * 5 + 0.8) / (2.1 * 3 + 0.8), abs=2
    )  # 5 rows, 3


def test_case_figure_tiles_every_panel_and_colours_only_the_errors():
    """The case figure is one mosaic: every row's input, truth, prediction and errors at their place (tiles of
    different sizes top-left in equal cells), false positives red and false negatives blue, nothing else
    coloured."""
    import io

    from matplotlib.image import imread

    from visionlab.report.render import figures

    big, small = np.zeros((8, 8), np.uint8), np.zeros((4, 6), np.uint8)
    tiles = [
        [figures._panel_rgb(big, 255)],
        [figures._panel_rgb(small + 255, 255), figures._panel_rgb(big, 255)],
    ]
    mosaic = figures.case_mosaic(tiles, gap=2)
    grey = figures.MOSAIC_GAP
    assert mosaic.shape == (22, 22, 3)  # 2 rows × 2 cells of 8 px, framed and parted by 2 px of grey
    assert (mosaic[2:10, 2:10] == 0).all() and (mosaic[:2] == grey).all() and (mosaic[:, :2] == grey).all()
    assert (mosaic[12:16, 2:8] == 1).all() and (mosaic[16:20, 2:10] == grey).all()  # small tile top-left
    assert (mosaic[2:10, 12:20] == grey).all()  # the first row has no second tile
    assert (mosaic[12:20, 12:20] == 0).all() and (mosaic[10:12] == grey).all()

    image = np.full((32, 32), 128, np.uint8)
    mask, pred = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
    mask[:, :16], pred[:, 8:24] = True, True  # columns 0-7 missed, 16-23 false alarms
    q = {
        f"worst_{k}": v
        for k, v in (("image", image), ("mask", mask), ("pred", pred), ("index", 3), ("f1", 0.5))
    }
    png = imread(io.BytesIO(figures.cases("v", q, ("background", "foreground"))))[..., :3]
    red = (png[..., 0] > 0.6) & (png[..., 1] < 0.45) & (png[..., 2] < 0.45)
    blue = (png[..., 2] > 0.6) & (png[..., 0] < 0.45)
    above_legend = png.shape[0] - 45  # the bottom 0.4 in holds the legend's two colour patches
    _, red_cols = np.nonzero(red[:above_legend])
    _, blue_cols = np.nonzero(blue[:above_legend])
    assert len(red_cols) and len(blue_cols)
    assert (
        min(red_cols.min(), blue_cols.min()) > 0.7 * png.shape[1]
    )  # only the last of four panels is coloured
    assert blue_cols.max() < red_cols.min()  # missed columns 0-7 lie left of the false alarms in 16-23


@pytest.mark.parametrize("n_variants", [2, 14])
@pytest.mark.parametrize("panels", [3, 4])
def test_the_curves_legend_lies_inside_the_figure_and_clear_of_the_panels(n_variants, panels):
    """Many variants with long names (a sweep over a setting names each one after it) used to push the legend
    past the figure's edges and over the axis labels: every entry must be on the page, clear of every
    panel."""
    import matplotlib.pyplot as plt

    from visionlab.report.render import figures

    variants = [f"cnn_rprop_b{2**i} (trainer.max_epochs={10 * i})" for i in range(n_variants)]
    colours = dict(zip(variants, figures._colours(len(variants)) * 3))
    series = {v: [(1, np.arange(5), np.linspace(1.0, 0.2, 5))] for v in variants}
    data = [([series], f"panel {i}", True) for i in range(panels - 1)]
    same_lr = figures._same_lr({v: [(1, np.arange(5), np.full(5, 1e-3))] for v in variants})
    fig = figures.curves_figure(variants, colours, data, same_lr)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    (legend,) = fig.legends or [ax.get_legend() for ax in fig.axes if ax.get_legend() and not ax.has_data()]
    box = legend.get_window_extent(renderer)
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)
    assert len(legend.get_texts()) == n_variants + 4
    for ax in fig.axes:
        if ax.has_data():  # a panel with its tick and axis labels
            assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()
    plt.close(fig)


def test_curves_use_log_loss_axes_labelled_epochs_from_one():
    import matplotlib.pyplot as plt

    from visionlab.report.render.figures import _panel

    fig, ax = plt.subplots()
    seed = (1, np.array([1, 2, 3]), np.array([1.0, 0.5, 0.2]))  # run_series counts epochs from 1
    _panel(ax, {"v": [seed]}, {"v": "C0"}, "-", log=True)
    assert ax.get_yscale() == "log" and "epoch" in ax.get_xlabel()
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    plt.close(fig)


_PROBE = """<script>document.body.setAttribute('data-overflow', String(document.documentElement.scrollWidth >
window.innerWidth)); document.body.setAttribute('data-scrolls', String(Array.from(document.querySelectorAll(
'.scroll')).some(d => d.scrollWidth > d.clientWidth)));</script></body>"""


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="Chromium is not installed (apt-get install chromium)",
)
@pytest.mark.parametrize("width", [900, 1400])
def test_page_layout_in_a_headless_browser(cls_report, tmp_path, width):
    out = cls_report[0]
    probe = tmp_path / "probe.html"
    probe.write_text((out / "report.html").read_text().replace("</body>", _PROBE))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={width},1000",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=60
    ).stdout
    assert 'data-overflow="false"' in dom  # nothing wider than the window
    assert 'data-scrolls="false"' in dom  # and no table needs its scroll box: every column is on screen
    shot = tmp_path / f"report_{width}.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True,
        timeout=60,
    )
    assert shot.stat().st_size > 0


def test_devices_are_a_caveat_and_mixed_devices_are_named_per_variant(tmp_path):
    classification_run(tmp_path / "one", "cnn_baseline", 1, [0.5, 0.6])
    markdown, _, _ = _report(tmp_path / "out1", str(tmp_path / "one"))
    assert "All runs ran on CPU (2 threads), bf16-mixed." in _section(markdown, "Caveats")
    classification_run(tmp_path / "two", "cnn_baseline", 1, [0.5, 0.6])
    classification_run(tmp_path / "two", "cnn_fast", 1, [0.7, 0.8], device="1x NVIDIA H200")
    classification_run(tmp_path / "two", "cnn_fast", 2, [0.7, 0.8])
    markdown, _, _ = _report(tmp_path / "out2", str(tmp_path / "two"))
    assert (
        "The runs ran on **different devices**: 1x NVIDIA H200, bf16-mixed: cnn_fast; CPU (2 threads), "
        "bf16-mixed: cnn_baseline, cnn_fast. Compare wall time and images/s only within one device"
    ) in _section(markdown, "Caveats")


def test_many_segmentation_variants_list_cases_as_columns_and_variants_as_rows(tmp_path):
    """Four variants × two classes would be eight case columns: the table turns around (a row per variant and
    class, a column per case), so a study of many variants stays readable."""
    for i, variant in enumerate(("a", "b", "c", "d")):
        segmentation_run(
            tmp_path / "runs",
            variant,
            1,
            [0.90 + i / 100, 0.91, 0.92, 0.93],
            [0.60, 0.61, 0.62, 0.63 + i / 100],
            [0.88, 0.90, 0.86, 0.92],
        )
    markdown, _, _ = _report(tmp_path / "out", str(tmp_path / "runs"))
    assert "| variant | class | case 0 | case 1 | case 2 | case 3 |" in markdown
    assert "| d | background | 0.6000 | 0.6100 | 0.6200 | 0.6600 |" in markdown
    assert "| d | foreground | 0.9300 | 0.9100 | 0.9200 | 0.9300 |" in markdown
