"""The report compares like with like: a variant evaluated on data X against the baseline's model on X, a Δ
across training budgets says so, a run ending far above the chance loss is unhealthy, a run that fell from its
best is not "flat", and curves of variants whose epochs differ in length are drawn against optimizer steps."""

from __future__ import annotations

import pytest

from report_fixtures import classification_run, segmentation_run, write_report
from visionlab.record import metric_keys as keys
from visionlab.report.analysis.convergence import FELL, FLAT, run_convergence
from visionlab.report.analysis.run_health import health
from visionlab.report.analysis.stats import TASKS, aggregate
from visionlab.report.collect import collect


def _seg(root, variant, seed, f1, *, data, trained_at=None, tta=None, evaluated=None):
    """A segmentation record; ``evaluated``: the training run folder whose checkpoint this record only
    evaluated."""
    folder = segmentation_run(
        root,
        variant,
        seed,
        f1,
        [0.9] * len(f1),
        [0.5] * len(f1),
        data=data,
        config={"experiment_name": variant, "model": {"tta": tta}},
    )
    summary = folder.read_summary()
    summary["output_dir"] = trained_at or f"/elsewhere/logs/sweeps/screen/{variant}_s{seed}"
    if evaluated is not None:
        summary.update(epochs=0, evaluated_checkpoint=f"logs/sweeps/screen/{evaluated}/checkpoints/best.ckpt")
    folder.write_summary(summary)
    return folder


def test_each_variant_is_compared_with_the_baseline_model_on_the_same_evaluation_set(tmp_path):
    plain, bright = "npz:/host/a/isbi.npz (test 24-29)", "npz:/host/b/isbi_bright.npz"
    for seed in (1, 2, 3):
        jitter = 0.001 * seed
        _seg(tmp_path, "r0", seed, [0.70 + jitter] * 3, data=plain)
        _seg(tmp_path, "r2", seed, [0.72 + jitter] * 3, data=plain)
        _seg(tmp_path, "r0_bright", seed, [0.20 + jitter] * 3, data=bright, evaluated=f"r0_s{seed}")
        _seg(tmp_path, "r2_bright", seed, [0.68 + 2 * jitter] * 3, data=bright, evaluated=f"r2_s{seed}")
        _seg(tmp_path, "r0_tta", seed, [0.71 + jitter] * 3, data=plain, tta="flips", evaluated=f"r0_s{seed}")
        _seg(tmp_path, "r2_tta", seed, [0.75 + jitter] * 3, data=plain, tta="flips", evaluated=f"r2_s{seed}")
    runs = collect([tmp_path]).runs
    task = aggregate(TASKS[keys.SEGMENTATION.task], runs, "r0")
    by = {v.variant: v for v in next(m for m in task.measures if m.key == keys.TEST_F1).variants}
    assert by["r2"].compared_with == "r0" and abs(by["r2"].delta - 0.02) < 1e-9
    # the brighter slices: r2's model against r0's model on the same slices, not against r0 on the plain ones
    assert by["r2_bright"].compared_with == "r0_bright"
    assert abs(by["r2_bright"].delta - (0.68 + 0.004 - 0.20 - 0.002)) < 1e-9
    assert by["r0_bright"].reference and by["r0_bright"].delta is None  # the baseline's model on another set
    # test-time options: r2 with flips against r0 with flips; r0 with flips against r0 without (their own
    # effect)
    assert by["r2_tta"].compared_with == "r0_tta" and abs(by["r2_tta"].delta - 0.04) < 1e-9
    assert by["r0_tta"].compared_with == "r0" and abs(by["r0_tta"].delta - 0.01) < 1e-9
    doc, numbers, _ = write_report(tmp_path / "out", str(tmp_path), "--baseline", "r0")
    assert "reference on its data" in doc and "(vs r0_bright)" in doc
    rows = {
        r["variant"]: r
        for m in numbers["tasks"]["segmentation"]["measures"]
        for r in m["variants"]
        if m["key"] == keys.TEST_F1
    }
    assert rows["r2_bright"]["compared_with"] == "r0_bright"


def test_a_delta_across_training_budgets_says_so(tmp_path):
    for seed in (1, 2):
        classification_run(tmp_path, "base", seed, [0.5, 0.6, 0.7 + 0.01 * seed], cap=3)
        classification_run(tmp_path, "long", seed, [0.5, 0.6, 0.7, 0.8, 0.85 + 0.01 * seed], cap=5)
        classification_run(tmp_path, "same", seed, [0.5, 0.6, 0.72 + 0.01 * seed], cap=3)
    doc, numbers, _ = write_report(tmp_path / "out", str(tmp_path), "--baseline", "base")
    rows = {r["variant"]: r for r in numbers["tasks"]["classification"]["measures"][0]["variants"]}
    assert rows["long"]["budget_note"] == "5 epochs vs 3 epochs" and rows["same"]["budget_note"] is None
    assert "at 5 epochs vs 3 epochs" in doc


def test_a_run_ending_far_above_the_chance_loss_is_diverged_and_left_out(tmp_path):
    ok = classification_run(tmp_path, "ok", 1, [0.3, 0.4, 0.5])
    bad = classification_run(tmp_path, "bad", 1, [0.2, 0.21, 0.22])
    rows = bad.read_metrics()
    for row in rows:
        row[keys.TRAIN_LOSS] = 75.0  # ln 43 = 3.76: twenty times a uniform guess
    bad.write_metrics(rows)
    for folder in (ok, bad):
        summary = folder.read_summary()
        summary["data_facts"] = {"num_classes": 43}
        folder.write_summary(summary)
    runs = {r.variant: r for r in collect([tmp_path]).runs}
    assert health(runs["ok"])["status"] == "ok"
    state = health(runs["bad"])
    assert (
        state["status"] == "diverged"
        and state["epoch"] == 2
        and "20× the chance loss ln 43" in state["reason"]
    )
    doc, _, _ = write_report(tmp_path / "out", str(tmp_path))
    assert "**diverged** at epoch 3" in doc


def test_the_trainer_records_the_chance_rule_too():
    from visionlab.record.health import assess

    rows = [
        {keys.EPOCH: e, keys.TRAIN_LOSS: loss, keys.VAL_ACC: 0.2} for e, loss in enumerate([3.8, 40.0, 70.0])
    ]
    assert assess(rows, "classification", keys.VAL_ACC, "max", num_classes=43)["status"] == "diverged"
    assert assess(rows, "classification", keys.VAL_ACC, "max", num_classes=None)["status"] == "ok"
    healthy = [{**r, keys.TRAIN_LOSS: 3.5 / (r[keys.EPOCH] + 1)} for r in rows]
    assert assess(healthy, "classification", keys.VAL_ACC, "max", num_classes=43)["status"] == "ok"


def test_a_curve_that_fell_from_its_best_is_not_called_flat(tmp_path):
    classification_run(tmp_path, "fell", 1, [0.20, 0.248, 0.20, 0.15, 0.127], cap=5, lrs=[1e-3] * 5)
    classification_run(tmp_path, "flat", 1, [0.50, 0.60, 0.600, 0.599, 0.600], cap=5, lrs=[1e-3] * 5)
    runs = {r.variant: r for r in collect([tmp_path]).runs}
    fell = run_convergence(runs["fell"], keys.VAL_ACC)
    assert fell.state == FELL and abs(fell.drop - 0.121) < 1e-9
    assert run_convergence(runs["flat"], keys.VAL_ACC).state == FLAT


def test_curves_are_drawn_by_step_when_epochs_differ_in_length_and_evaluations_have_no_legend_entry(tmp_path):
    from visionlab.report.build import _curves
    from visionlab.report.render import figures

    for variant, steps in (("short", 8), ("long", 40)):
        folder = classification_run(tmp_path, variant, 1, [0.5, 0.6, 0.7])
        rows = folder.read_metrics()
        for row in rows:
            row[keys.STEP] = steps * (int(row[keys.EPOCH]) + 1)
        folder.write_metrics(rows)
    evaluation = classification_run(tmp_path, "evaluated", 1, [0.5])
    evaluation.write_metrics([])
    runs = collect([tmp_path]).runs
    task = aggregate(TASKS[keys.CLASSIFICATION.task], runs, "short")
    assert figures.curve_axis(task.runs_by_variant) == keys.STEP
    draw, words, axis = figures.curves(task, [([keys.VAL_ACC], "accuracy", False)])
    assert axis == keys.STEP and not any(
        "steps" in w for w in words
    )  # the axis is the caption's, not the LR's
    (figure,) = _curves(task)
    assert figure.caption.startswith("Against optimizer steps (the variants' epochs hold different numbers")
    assert "Per epoch" not in figure.caption and "last point every seed reached" in figure.caption
    fig = figures.curves_figure(*draw.args)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("optimizer steps")
    assert sorted(max(line.get_xdata()) for line in ax.lines) == [24, 24, 120, 120]  # seed line + mean each
    legend = fig.legends[0] if fig.legends else next(a.get_legend() for a in fig.axes if a.get_legend())
    labels = [t.get_text() for t in legend.get_texts()]
    assert "evaluated" not in labels and {"short", "long"} <= set(labels)
    # equal epoch lengths: epochs, counted from 1
    same = {v: rs for v, rs in task.runs_by_variant.items() if v == "short"}
    assert figures.curve_axis(same) == keys.EPOCH
    (figure,) = _curves(
        aggregate(TASKS[keys.CLASSIFICATION.task], [r for r in runs if r.variant == "short"], None)
    )
    assert figure.caption.startswith("Per epoch, counted runs only") and "steps" not in figure.caption
    assert list(figures.run_series(same["short"], keys.VAL_ACC)[0][1]) == [1, 2, 3]


def test_pages_show_paths_relative_to_named_roots_never_the_hosts_own(tmp_path):
    from visionlab.report.render.portable import portable

    assert portable("GTSRB (/root/data/gtsrb32)") == "GTSRB ($DATA/gtsrb32)"
    assert portable("paths.log_dir=/tmp/cpustudy/logs") == "paths.log_dir=$LOGS"
    assert (
        portable("hydra.run.dir=/srv/screen/logs/evals/r0/eval_s1") == "hydra.run.dir=$LOGS/evals/r0/eval_s1"
    )
    assert portable("data.data_dir=/srv/constructed/thin.npz") == "data.data_dir=$DATA/thin.npz"
    assert (
        portable("ckpt_path=logs/sweeps/x/best.ckpt lr=1e-3/2")
        == "ckpt_path=logs/sweeps/x/best.ckpt lr=1e-3/2"
    )
    interpolated = "'+callbacks.best.dirpath=${paths.output_dir}/checkpoints'"  # relative to the run folder
    assert portable(interpolated) == interpolated
    for seed in (1, 2):
        classification_run(
            tmp_path,
            "base",
            seed,
            [0.5, 0.7],
            extra_summary={
                "data": "GTSRB (/home/alice/secret_project/data/gtsrb32)",
                "output_dir": "/home/alice/logs/sweeps/b",
                "overrides": [
                    "experiment=base",
                    f"seed={seed}",
                    "paths.log_dir=/home/alice/logs",
                    "data.data_dir=/home/alice/secret_project/data/gtsrb32",
                ],
            },
        )
    doc, numbers, page = write_report(tmp_path / "out", str(tmp_path))
    for text in (doc, page, str(numbers)):
        assert "/home/alice" not in text and "secret_project" not in text
    assert "$DATA/gtsrb32" in doc


def test_a_long_figure_title_is_wrapped_inside_the_figure():
    import matplotlib.pyplot as plt
    import numpy as np

    from visionlab.report.render import figures

    title = (
        "Confusion matrix of cnn_rprop_b1024 (trainer.max_epochs=50) on validation (track-held-out), 1 seed"
    )
    png = figures.confusion(np.eye(43, dtype=int) * 5 + 1, title)
    assert png.startswith(b"\x89PNG")

    def extent(text):  # the confusion figure's layout: a matrix with its colour bar
        fig, ax = plt.subplots(figsize=(6.4, 5.6))
        fig.colorbar(ax.imshow(np.eye(43)), ax=ax, fraction=0.046)
        ax.set_title(text, fontsize=9)
        fig.tight_layout()
        fig.canvas.draw()
        box, page = ax.title.get_window_extent(fig.canvas.get_renderer()), fig.bbox
        plt.close(fig)
        return page.x0 <= box.x0 and box.x1 <= page.x1

    assert not extent(title)  # as drawn before: clipped at the left edge
    assert extent(figures.fitted_title(title, 6.4 * 0.75))


def test_an_effect_in_the_same_direction_but_of_another_size_is_not_called_alike():
    from visionlab.report.analysis.stats import VariantStats
    from visionlab.report.render.tables import _verdict

    ours = VariantStats(
        "cnn_sgd", "test", [0.5, 0.52], [1, 2], 2, delta=-0.40, ci=(-0.45, -0.35), p_holm=0.001
    )
    assert _verdict(-0.05, ours) == "same direction, 8.0× the reference's size"
    assert _verdict(-0.42, ours) == "same direction and size"
    assert _verdict(+0.05, ours) == "**opposite direction**"
    assert _verdict(-0.05, VariantStats("x", "test", [], [], 2, delta=-0.4, p_holm=0.3)).startswith(
        "ours not"
    )


@pytest.mark.parametrize(("last_loss", "unhealthy"), [(7.9, True), (5.7, True), (5.5, False), (3.0, False)])
def test_the_far_above_chance_line_sits_at_one_and_a_half_times_a_uniform_guess(last_loss, unhealthy):
    """Rprop at batch 64 ended at 7.9 (2.1 × ln 43) with 12.7 % accuracy: that run failed; a run still near
    chance (a slow optimizer early on) has not."""
    from visionlab.record.health import far_above_chance

    rows = [{keys.EPOCH: 0, keys.TRAIN_LOSS: 3.5}, {keys.EPOCH: 1, keys.TRAIN_LOSS: last_loss}]
    assert (far_above_chance(rows, "classification", 43) is not None) is unhealthy


def test_a_section_without_a_tested_comparison_says_why_it_has_no_p_values(tmp_path):
    """One seed a side: no t-test is possible, and the page says so instead of "Holm over 0 comparisons"."""
    classification_run(tmp_path / "runs", "base", 1, [0.3, 0.4, 0.5])
    classification_run(tmp_path / "runs", "other", 1, [0.3, 0.5, 0.6])
    doc, numbers, _ = write_report(tmp_path / "out", str(tmp_path / "runs"), "--baseline", "base")
    assert numbers["tasks"]["classification"]["comparisons"] == 0
    assert "no variant has two counted seeds on both sides" in doc and "over all 0" not in doc
    classification_run(tmp_path / "runs", "base", 2, [0.3, 0.4, 0.55])
    classification_run(tmp_path / "runs", "other", 2, [0.3, 0.5, 0.65])
    doc, numbers, _ = write_report(tmp_path / "out2", str(tmp_path / "runs"), "--baseline", "base")
    assert "Holm-adjusted over all 1 comparison of this section" in doc
