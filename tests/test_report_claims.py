"""What a report may claim, on hand-made records: a reference is compared only where it measured the same
thing (else effects), reference files equal the seed's transcription, calibrated convergence flags, cost
per device, Holm-corrected marks, class names, correlated test cases, provenance that reproduces, bounded
and escaped record input, study READMEs equal to their report.json, and a page that fits a 900 px window."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO
from report_fixtures import classification_run, segmentation_run, write_report
from visionlab.report.analysis import convergence
from visionlab.report.analysis.reference import load_reference
from visionlab.report.analysis.stats import holm

REFERENCES = REPO / "experiments" / "reference"
RISING = [0.10 + 0.01 * e for e in range(20)]  # +1 pp per epoch to the cap, constant rate: budget-limited
COSINE = [0.5 * (1 + np.cos(np.pi * e / 19)) * 1e-3 + 1e-5 for e in range(20)]  # decays to 1 % of its peak


_report = write_report


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n")[1].split("\n## ")[0]


def _reference_file(tmp_path: Path, split: str | None, data: str | None) -> Path:
    path = tmp_path / f"ref_{split}_{data}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "hand-made reference",
                "source": "a test",
                "task": "classification",
                "metric": "test/acc",
                "baseline": "cnn_baseline",
                "measured": {"data": {"stated": data}, "split": {"stated": split}},
                "quantities": {"test/acc": {"label": "accuracy", "ours": "test/acc"}},
                "variants": {
                    "cnn_baseline": {"trials": {"test/acc": [0.50, 0.52]}},
                    "cnn_sgd": {"trials": {"test/acc": [0.60, 0.64]}},
                },
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def two_variants(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two")
    for seed, (a, b) in enumerate([(0.50, 0.70), (0.52, 0.73), (0.49, 0.71)], start=1):
        classification_run(root, "cnn_baseline", seed, [0.3, a])
        classification_run(root, "cnn_sgd", seed, [0.3, b])
    return root


# ------------------------------------------------------------------ 1. the reference: effects, never absolute
def test_no_difference_against_a_reference_measured_on_another_split_or_data(two_variants, tmp_path):
    """The runs are scored on validation of GTSRB: a reference that measured test, or that names no data set
    or another one, gets no absolute Δ and no interval; the same reference stating validation of GTSRB
    does."""
    for split, data, comparable in (
        ("test", "GTSRB", False),
        ("validation", None, False),
        ("validation", "SVHN", False),
        ("validation", "GTSRB", True),
    ):
        markdown, numbers, _ = _report(
            tmp_path / f"{split}{data}",
            str(two_variants),
            "--reference",
            str(_reference_file(tmp_path, split, data)),
        )
        reference = numbers["tasks"]["classification"]["reference"]
        assert reference["comparable"] is comparable
        assert bool(reference["absolute"]) is comparable
        assert ("Δ this study − reference" in markdown) is comparable
        (effect,) = reference["effects"]  # effects are always compared: each study's Δ to its own baseline
        assert effect["reference_delta"] == pytest.approx(0.62 - 0.51)
        assert effect["reference_ci"] is not None  # 2 vs 2 reference trials: the reference's own interval
        assert effect["delta"] == pytest.approx(np.mean([0.70, 0.73, 0.71]) - np.mean([0.50, 0.52, 0.49]))
        if split == "test":
            assert "is **not** a measurement of this study's data and split" in _section(markdown, "Caveats")


def test_no_interval_takes_a_single_value_as_exact():
    from visionlab.report.analysis.stats import difference_ci

    assert difference_ci([0.9089], [0.95, 0.96, 0.955]) is None
    assert difference_ci([0.95, 0.96, 0.955], [0.9089]) is None
    assert difference_ci([0.95, 0.96], [0.90, 0.91]) is not None


def test_the_seed_references_are_never_compared_in_absolute_terms():
    for name in ("seed_gtsrb_cnn.yaml", "seed_unet.yaml"):
        reference = load_reference(REFERENCES / name)
        assert reference.data.stated is None and reference.data.inferred  # the seed names no data set
        assert not reference.same_measurement("test", ["anything"])
        assert "seed_study_004.txt" in reference.source and "README" not in reference.source


# ------------------------------------------------------------------ 2. reference values = the seed's
# transcription
def _seed_tables() -> tuple[dict, dict]:
    """The two tables of seed_results.md: CNN variant → trials; U-Net variant → [(mean, std, min) per
    trial]."""
    text = (REFERENCES / "seed_results.md").read_text()
    cnn, unet, variant = {}, {}, None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and "%" in cells[2]:
            cnn[cells[0].split(" (")[0]] = [round(float(x.strip(" %")) / 100, 6) for x in cells[2].split("/")]
        elif len(cells) == 6 and re.fullmatch(r"\d+", cells[1] or "") and cells[2] == "123":
            variant = cells[0].split(" (")[0] or variant
            unet.setdefault(variant, []).append(tuple(float(x) for x in cells[3:6]))
    return cnn, unet


def test_reference_files_equal_the_seed_transcription():
    cnn, unet = _seed_tables()
    assert len(cnn) == 4 and len(unet) == 3 and all(len(t) == 2 for t in unet.values())
    gtsrb = load_reference(REFERENCES / "seed_gtsrb_cnn.yaml")
    assert {gtsrb.names[v]: gtsrb.trials(v) for v in gtsrb.variants} == cnn
    seg = load_reference(REFERENCES / "seed_unet.yaml")
    assert {
        seg.names[v].split(" (")[0]: list(
            zip(*(seg.trials(v, k) for k in ("test/f1", "test/f1_std", "test/f1_min")))
        )
        for v in seg.variants
    } == unet  # all six trials: mean, std and min
    assert "batch-wise" in seg.label("test/f1_std") and seg.quantities["test/f1_std"].ours is None


# ------------------------------------------------------------------ 3. convergence
def test_convergence_flags_a_rising_curve_and_not_a_finished_schedule(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        classification_run(runs, "cnn_baseline", seed, RISING, lrs=[1e-3] * 20)  # constant rate, at the cap
        classification_run(
            runs, "cnn_fast", seed, RISING, lrs=COSINE
        )  # the same rise, but the schedule ended
        classification_run(runs, "cnn_early", seed, [0.5, 0.6, 0.6, 0.6, 0.6], cap=60, lrs=[1e-3] * 5)
        classification_run(runs, "cnn_flat", seed, [0.5] + [0.60, 0.61] * 7 + [0.605], lrs=[1e-3] * 16)
    markdown, numbers, _ = _report(tmp_path / "out", str(runs))
    training = {v["variant"]: v for v in numbers["tasks"]["classification"]["variants"]}
    states = {name: {t["state"] for t in v["training"]} for name, v in training.items()}
    assert states == {
        "cnn_baseline": {convergence.RISING},
        "cnn_fast": {convergence.FINISHED},
        "cnn_early": {convergence.EARLY},
        "cnn_flat": {convergence.FLAT},
    }
    assert training["cnn_baseline"]["budget_limited"] == 2 and training["cnn_fast"]["budget_limited"] == 0
    rising = training["cnn_baseline"]["training"][0]
    assert rising["window"] == 5 and rising["gain"] == pytest.approx(0.05)  # last 5 of 20 epochs: +5 pp
    caveats = _section(markdown, "Caveats")
    assert "cnn_baseline: trained 20 epochs (cap 20); **budget-limited**: 2 of 2 runs still rising" in caveats
    assert "cnn_fast: trained 20 epochs (cap 20); 2 ran their decaying schedule to its end" in caveats
    assert "budget-limited" not in next(
        line for line in caveats.splitlines() if line.startswith("- cnn_fast:")
    )
    # next to the Δ: the training column of the table over seeds, and the summary line
    over = markdown.split("### Over seeds")[1].split("### Cost")[0]
    rows = {line.split(" | ")[0][2:]: line for line in over.splitlines() if line.startswith("| cnn_")}
    assert rows["cnn_baseline"].endswith("| **budget-limited** (2 of 2) |")
    assert rows["cnn_fast"].endswith("| schedule finished (2 of 2) |")
    summary = _section(markdown, "Summary")
    assert "cnn_baseline: 29.00 ± 0.00 % accuracy (n = 2); **budget-limited** (2 of 2 runs" in summary


# ------------------------------------------------------------------ 4. cost per device
def test_cost_is_given_per_device_and_never_averaged_across_devices(tmp_path):
    runs = tmp_path / "runs"
    classification_run(
        runs,
        "cnn_baseline",
        1,
        [0.5, 0.6],
        device="1x NVIDIA H200",
        wall=20.0,
        images_per_s=9000.0,
        start=1000.0,
    )
    classification_run(
        runs,
        "cnn_baseline",
        2,
        [0.5, 0.6],
        device="1x NVIDIA H200",
        wall=30.0,
        images_per_s=7000.0,
        start=1005.0,
    )  # overlaps seed 1 on the same GPU
    classification_run(
        runs,
        "cnn_baseline",
        3,
        [0.5, 0.6],
        device="CPU (2 threads)",
        wall=600.0,
        images_per_s=1500.0,
        start=1000.0,
    )
    markdown, numbers, _ = _report(tmp_path / "out", str(runs))
    (variant,) = numbers["tasks"]["classification"]["variants"]
    assert variant["cost"] == {
        "1x NVIDIA H200": {
            "runs": 2,
            "wall_time_s": [20.0, 30.0],
            "train_images_per_s": [9000.0, 7000.0],
            "precision": ["bf16-mixed"],
        },
        "CPU (2 threads)": {
            "runs": 1,
            "wall_time_s": [600.0],
            "train_images_per_s": [1500.0],
            "precision": ["bf16-mixed"],
        },
    }
    assert (
        "| cnn_baseline | 1x NVIDIA H200 | 2 | 25 s (20 s–30 s) | 8,000 (7,000–9,000) | 2 | bf16-mixed |"
        in markdown
    )
    assert "| cnn_baseline | CPU (2 threads) | 1 | 600 s | 1,500 | 1 | bf16-mixed |" in markdown
    assert "216" not in markdown and "5,833" not in markdown  # no mean over the three runs of two devices


def test_time_to_accuracy_is_shown_per_device(tmp_path):
    runs = tmp_path / "runs"
    classification_run(
        runs,
        "cnn_fast",
        1,
        [0.5, 0.98],
        device="1x NVIDIA H200",
        extra_summary={"time_to": {"val/acc>=0.9": 9.5, "val/acc>=0.99": None}},
    )
    classification_run(
        runs,
        "cnn_fast",
        2,
        [0.5, 0.98],
        extra_summary={"time_to": {"val/acc>=0.9": 33.4, "val/acc>=0.99": None}},
    )
    markdown, _, _ = _report(tmp_path / "out", str(runs))
    assert "| variant | device | val/acc ≥ 90.00 % | val/acc ≥ 99.00 % |" in markdown
    assert "| cnn_fast | 1x NVIDIA H200 | 9.5 s (1 of 1) | never (0 of 1) |" in markdown
    assert "| cnn_fast | CPU (2 threads) | 33 s (1 of 1) | never (0 of 1) |" in markdown


# ------------------------------------------------------------------ 5. multiple comparisons
def test_holm_adjustment_by_hand():
    # sorted p: 0.01, 0.02, 0.04 → 3 × 0.01 = 0.03, max(0.03, 2 × 0.02) = 0.04, max(0.04, 1 × 0.04) = 0.04
    adjusted = holm([0.04, 0.01, None, 0.02])
    assert adjusted[2] is None  # no test: not counted
    assert [adjusted[i] for i in (0, 1, 3)] == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1, never below an earlier step


def test_significance_marks_use_holm_adjusted_p(tmp_path):
    """Three variants against one baseline: one raw p just under 0.05 loses its mark after Holm."""
    runs = tmp_path / "runs"
    base = [0.50, 0.52, 0.51, 0.49]
    shifts = {
        "cnn_big": [0.90, 0.91, 0.92, 0.90],
        "cnn_small": [0.535, 0.545, 0.525, 0.515],
        "cnn_none": [0.50, 0.53, 0.49, 0.51],
    }
    for seed, value in enumerate(base, start=1):
        classification_run(runs, "cnn_baseline", seed, [0.1, value])
        for name, values in shifts.items():
            classification_run(runs, name, seed, [0.1, values[seed - 1]])
    markdown, numbers, _ = _report(tmp_path / "out", str(runs))
    by = {v["variant"]: v for v in numbers["tasks"]["classification"]["variants"]}
    raw = [by[v]["p_value"] for v in ("cnn_big", "cnn_none", "cnn_small")]
    assert [by[v]["p_holm"] for v in ("cnn_big", "cnn_none", "cnn_small")] == pytest.approx(holm(raw))
    assert (
        by["cnn_small"]["p_value"] < 0.05 <= by["cnn_small"]["p_holm"]
    )  # significant only before correction
    assert by["cnn_big"]["significant"] and not by["cnn_small"]["significant"]
    over = markdown.split("### Over seeds")[1].split("### Cost")[0]
    rows = {
        line.split(" | ")[0][2:]: line.split(" | ") for line in over.splitlines() if line.startswith("| cnn_")
    }
    assert rows["cnn_big"][5].startswith("**+") and "**" not in rows["cnn_small"][5]
    assert "Holm-adjusted over all 3" in _section(markdown, "Caveats")


def test_a_comparison_without_a_test_is_called_untested_not_insignificant(tmp_path):
    """One seed on a side (or no spread) runs no Welch test: the summary gives the Δ and says it is
    untested."""
    runs = tmp_path / "runs"
    for seed in (1, 2):
        classification_run(runs, "cnn_baseline", seed, [0.1, 0.50 + seed / 100])
        classification_run(runs, "cnn_tested", seed, [0.1, 0.70 + seed / 100])
    classification_run(runs, "cnn_once", 1, [0.1, 0.60])
    summary = _section(_report(tmp_path / "out", str(runs))[0], "Summary")
    assert "significance after Holm's correction over 1 comparison:" in summary
    assert "cnn_once: 60.00 % accuracy (n = 1); Δ +8.50 pp, untested (one seed on a side" in summary
    assert (
        "cnn_tested: 71.50 ± 0.71 % accuracy (n = 2); Δ +20.00 pp [+16.96, +23.04] pp, **significant** (Holm "
        "p = " in summary
    )
    assert "p = n/a" not in summary and "pp n/a" not in summary
    single = tmp_path / "single"
    classification_run(single, "cnn_baseline", 1, [0.1, 0.5])
    classification_run(single, "cnn_once", 1, [0.1, 0.6])
    summary = _section(_report(tmp_path / "out2", str(single))[0], "Summary")
    assert "no significance test (each comparison has one seed on a side, or no spread)" in summary
    assert "over 0 comparisons" not in summary and "not significant" not in summary


# ------------------------------------------------------------------ segmentation: classes, correlated cases
def test_segmentation_names_classes_puts_the_minority_class_first_and_says_cases_are_correlated(tmp_path):
    config = {
        "experiment_name": "unet",
        "data": {"class_names": ["membrane", "cell <b>interior</b>"]},
        "model": {
            "_target_": "visionlab.tasks.segmentation.module.SegmentationModule",
            "features_start": 4,
            "depth": 2,
        },
    }
    trivial = [0.90, 0.88, 0.91]  # foreground (label 1) is ~82 % of the pixels: label 0 is the minority class
    for variant, bg in (("unet_baseline", [0.70, 0.72, 0.71]), ("unet_elu", [0.74, 0.75, 0.73])):
        for seed in (1, 2):
            segmentation_run(
                tmp_path / "runs",
                variant,
                seed,
                [0.95, 0.94, 0.96],
                bg,
                trivial,
                data="stack.npz (contiguous blocks of the stack: test 24–26)",
                config={**config, "experiment_name": variant, "seed": seed},
            )
    markdown, numbers, page = _report(tmp_path / "out", str(tmp_path / "runs"))
    measures = numbers["tasks"]["segmentation"]["measures"]
    assert [m["key"] for m in measures] == ["test/f1_bg", "test/f1"]  # the hard class first
    assert [m["label"] for m in measures] == ["membrane F1", "cell <b>interior</b> F1"]
    summary = _section(markdown, "Summary")
    assert summary.index("**membrane F1** (label 0, the minority class") < summary.index("cell")
    caveats = _section(markdown, "Caveats")
    assert "the test split is **3 cases**: **adjacent slices of one volume**" in caveats
    assert "No test is run over cases: they are adjacent slices of one volume" in markdown
    assert "p (paired" not in markdown
    assert "<b>interior" not in page and "&lt;b&gt;interior" in page  # names from a record stay text
    assert "<b>" not in markdown


# ------------------------------------------------------------------ provenance
def test_provenance_shows_corrections_the_data_a_run_read_and_unrecorded_versions(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        classification_run(
            runs,
            "cnn_baseline",
            seed,
            [0.5, 0.6],
            config={"data": {"data_dir": "/data/gtsrb32"}, "sweep_name": "cnn_ablation"},
            extra_summary={
                "git": {"commit": "f" * 40, "dirty": False, "corrected": "was 0a3ad91"},
                "versions": {"torch": "2.11.0", "visionlab": None},
            }
            if seed == 1
            else {"versions": {"torch": "2.11.0", "visionlab": None}},
        )
    markdown, _, _ = _report(tmp_path / "out", str(runs))
    provenance = _section(markdown, "Provenance")
    assert "`python train.py experiment=cnn_baseline seed=1 data.data_dir=$DATA/gtsrb32`" in provenance
    assert (
        "ffffffffff (corrected, note 1)" in provenance
        and "note 1 (1 run, `git.corrected`): “was 0a3ad91”" in provenance
    )
    assert "1 of 2 run records were **corrected by hand**" in _section(markdown, "Caveats")
    assert (
        "Package versions (all runs): torch 2.11.0. Not recorded" in provenance
        and "visionlab None" not in markdown
    )
    assert "jobs of the multirun `cnn_ablation`" in provenance


# ------------------------------------------------------------------ classification detail
def test_misclassified_images_are_sampled_across_classes_and_seeds(tmp_path):
    from visionlab.report.render.figures import sample_mistakes

    rng = np.random.default_rng(0)
    records = [
        (
            seed,
            {
                "images": rng.integers(0, 255, (32, 4, 4, 3), dtype=np.uint8),
                "true": np.array([0] * 24 + [5] * 6 + [9] * 2),
                "pred": np.ones(32, int),
            },
        )
        for seed in (1, 2, 3)
    ]
    picked = sample_mistakes(records, 12)
    classes = [int(dict(records)[s]["true"][i]) for s, i in picked]
    assert [classes.count(c) for c in (0, 5, 9)] == [4, 4, 4]  # classes in turn, not the first 12 of class 0
    assert {s for s, _ in picked} == {1, 2, 3}  # seeds in turn within a class
    assert [i for s, i in picked if s == 1 and classes[picked.index((s, i))] == 0] == [
        0,
        6,
    ]  # every 6th frame


def test_worst_classes_are_named_and_counted_per_seed(two_variants, tmp_path):
    markdown, numbers, _ = _report(tmp_path / "out", str(two_variants))
    assert "| class | name | validation (best epoch) images (each seed) | accuracy (all seeds) |" in markdown
    assert "| 7 | Speed limit (100km/h) | 43 | 2.33 % |" in markdown  # 129 summed over 3 seeds = 43 per seed
    worst = numbers["tasks"]["classification"]["detail"]["cnn_sgd"]["worst_classes"][0]
    assert worst["support"] == 129 and worst["images_per_seed"] == 43


# ------------------------------------------------------------------ curves
def test_curve_means_cover_only_epochs_every_seed_reached():
    from visionlab.report.render.figures import _same_lr, common_mean

    series = [(1, np.arange(5), np.arange(5.0)), (2, np.arange(3), np.arange(3.0) + 1)]
    epochs, mean = common_mean(series)
    assert list(epochs) == [0, 1, 2] and list(mean) == [0.5, 1.5, 2.5]
    constant = {v: [(1, np.arange(n), np.full(n, 1e-3))] for v, n in (("a", 60), ("b", 20), ("c", 51))}
    groups = _same_lr({**constant, "d": [(1, np.arange(4), np.array([4e-4, 3e-3, 2e-3, 7e-4]))]})
    assert sorted(names for _, names in groups) == [["a", "b", "c"], ["d"]]  # equal schedules: one line
    # against optimizer steps, equal per-epoch rates over 8-step and 40-step epochs are two schedules
    by_step = {
        "short": [(1, np.arange(5) * 8, np.full(5, 1e-3))],
        "long": [(1, np.arange(5) * 40, np.full(5, 1e-3))],
    }
    assert sorted(names for _, names in _same_lr(by_step)) == [["long"], ["short"]]


# ------------------------------------------------------------------ bounded and inert record input
def test_a_wide_crafted_model_is_carded_on_the_meta_device(tmp_path, monkeypatch):
    from visionlab.report.render import arch_card

    seen = []
    original = arch_card.architecture_card

    def spy(model, input_shape, title=""):
        seen.append({p.device.type for p in model.parameters()})
        return original(model, input_shape, title)

    monkeypatch.setattr(arch_card, "architecture_card", spy)
    cfg = {
        "model": {
            "_target_": "visionlab.tasks.classification.module.ClassificationModule",
            "net": {"type": "seed_cnn", "width": 40},
        }
    }
    card = arch_card.card_from_config(cfg)
    assert seen == [{"meta"}]  # no real weights: 97.7 M parameters would be 390 MB
    wide, narrow = 64 * 40, 32 * 40
    assert (
        card.total_params
        == (3 * 25 + 1) * wide + (wide * 25 + 1) * narrow + (narrow * 9 + 1) * narrow + (narrow * 16 + 1) * 43
    )
    with pytest.raises(ValueError, match="outside what a report builds"):
        arch_card.card_from_config({"model": {**cfg["model"], "net": {"type": "seed_cnn", "width": 10_000}}})
    with pytest.raises(TypeError, match="wrong type"):  # a nested _target_ is never built
        arch_card.card_from_config(
            {
                "model": {
                    **cfg["model"],
                    "net": {"type": "seed_cnn", "activation": {"_target_": "pathlib.Path.touch"}},
                }
            }
        )


def test_oversized_and_crafted_record_files_are_problems_not_crashes(tmp_path):
    runs = tmp_path / "runs"
    folder = classification_run(runs, "cnn_baseline", 1, [0.5, 0.6])
    zeros = np.zeros((40_000, 32, 32, 3), np.uint8)  # 123 MB unpacked, a few hundred KB packed
    np.savez_compressed(
        folder.path / "val_misclassified.npz",
        images=zeros,
        true=np.zeros(40_000, int),
        pred=np.ones(40_000, int),
    )
    assert (folder.path / "val_misclassified.npz").stat().st_size < 2_000_000
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")
    )
    other = classification_run(runs, "cnn_sgd", 1, [0.5, 0.7])
    (other.path / "config.yaml").write_text(bomb + "model: *i\n")
    markdown, _, _ = _report(tmp_path / "out", str(runs))
    caveats = _section(markdown, "Caveats")
    assert "val_misclassified.npz not read: unpacks to more than" in caveats
    assert (
        "run cnn_sgd_s1 skipped: config.yaml: more than 20,000 entries" in caveats
    )  # issue 28: skipped, named
    assert "cnn_baseline: no misclassified images recorded." in markdown


def test_config_differences_of_many_single_seed_variants_stay_narrow_and_skip_run_locations(tmp_path):
    """Seven one-seed variants: one row per variant (not one column), at most three keys per table, and no key
    that only names a run's own folder or checkpoint (with one seed per variant those differ too, but say
    nothing)."""
    runs = tmp_path / "runs"
    for i in range(7):
        classification_run(
            runs,
            f"v{i}",
            1,
            [0.5, 0.6],
            config={
                "data": {"batch_size": 4 * (i + 1)},
                "ckpt_path": f"/x/run{i}/last.ckpt",
                "callbacks": {"model_checkpoint": {"dirpath": f"/x/run{i}/checkpoints"}},
            },
        )
    markdown, _, _ = _report(tmp_path / "out", str(runs))
    differences = markdown.split("### Config differences between variants\n")[1].split("\n## ")[0]
    assert "| variant | `data.batch_size` | `experiment_name` |" in differences
    assert '| v6 | 28 | "v6" |' in differences
    assert "ckpt_path" not in differences and "dirpath" not in differences
    assert all(line.count("|") <= 5 for line in differences.splitlines() if line.startswith("|"))


def test_a_sweep_over_a_setting_under_one_experiment_name_is_one_variant_per_setting(tmp_path):
    """`-m experiment=cnn_best data.scale=0,0.1 seed=1,2` keeps the experiment's name: the page must not read
    it as one variant of four seeds. Keys that only place or show a run (threads, paths) do not split a
    variant."""
    for scale, curve in (("0", [0.50, 0.60]), ("0.1", [0.70, 0.80])):
        for seed in (1, 2):
            classification_run(
                tmp_path / "runs" / f"scale{scale}",
                "cnn_best",
                seed,
                curve,
                config={"data": {"scale": float(scale)}},
                extra_summary={
                    "overrides": [
                        "experiment=cnn_best",
                        f"seed={seed}",
                        f"data.scale={scale}",
                        f"threads={seed}",
                        f"paths.log_dir=/logs/{seed}",
                    ]
                },
            )
    markdown, numbers, _ = _report(
        tmp_path / "out", str(tmp_path / "runs"), "--baseline", "cnn_best (data.scale=0)"
    )
    (measure,) = numbers["tasks"]["classification"]["measures"][:1]
    by_name = {v["variant"]: v for v in measure["variants"]}
    assert set(by_name) == {"cnn_best (data.scale=0)", "cnn_best (data.scale=0.1)"}
    assert by_name["cnn_best (data.scale=0)"]["n"] == 2 and by_name["cnn_best (data.scale=0.1)"]["n"] == 2
    assert by_name["cnn_best (data.scale=0.1)"]["mean"] == pytest.approx(0.80)
    assert "| cnn_best (data.scale=0.1) | 2 | 80.00 ± 0.00 %" in markdown
