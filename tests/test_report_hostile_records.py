"""Hostile run records (issue 28): the report is pointed at folders a user did not make, so a crafted record
must never make it touch the network, read or write outside the run folder, hang, exhaust memory or fall over.

``visionlab-report`` runs as a subprocess under an address-space cap and a time limit, with a
``sitecustomize`` that records (and refuses) every socket connect. One invocation reports a study holding one
good run and every crafted run below (each run is judged on its own line, so one invocation proves each case);
the arguments that must be refused (a bad ``--out``, a missing path, a deep ``--reference``) get one
invocation each. Asserted: exit 0 with each crafted run named as skipped (or exit 2 with one line), no socket
connect, nothing written outside ``--out``, and the planted secret nowhere in what the report wrote."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from report_fixtures import classification_run
from visionlab.record.folder import RunFolder
from visionlab.report.render import document as render
from visionlab.report.render.slugs import slug

SECRET = "SECRET-8d41c2"  # planted in every file outside the run folders
MEMORY_CAP = 4 * 2**30  # torch's own libraries map about 3 GB of address space before any work
TIME_LIMIT = 180  # seconds, generous for a loaded 2-core machine (the invocation takes a few seconds)
DEEP = 200_000  # nesting levels (the RecursionError)
GUARD = """
import os, socket
def _refuse(self, *args, **kwargs):
    with open(os.environ["NETWORK_MARKER"], "a") as fh:
        fh.write(repr(args) + "\\n")
    raise OSError("network use refused by the test")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""
TIMM_MODEL = {"_target_": "visionlab.tasks.classification.module.ClassificationModule", "num_classes": 43}


def _outside(tmp: Path, name: str) -> Path:
    target = tmp / "outside" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{SECRET},1\n{SECRET},2\n")
    return target


def _link(path: Path, target) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def _run(study: Path, name: str, **kwargs) -> RunFolder:
    return classification_run(study, name, 2, [0.5, 0.6], **kwargs)


# each crafted run: (folder name, how it is made, the file its skip line names, or None when it is reported)
def _url_card(tmp, study):
    cache = tmp / "outside" / "timm_cache"
    cache.mkdir(parents=True)
    net = {
        "type": "timm",
        "name": "resnet18",
        "pretrained": True,
        "args": {
            "cache_dir": str(cache),
            "depth": 20_000,
            "pretrained_cfg_overlay": {"url": "http://127.0.0.1:9/evil.pth"},
        },
    }
    _run(study, "url_card", config={"model": {**TIMM_MODEL, "net": net}})


def _linked(name):
    def make(tmp, study):
        folder = _run(study, f"link_{name.split('.')[0]}")
        _link(folder.file(name), _outside(tmp, name))

    return make


def _dev_zero(tmp, study):
    _link(_run(study, "dev_zero").file("summary.json"), "/dev/zero")


def _fifo(tmp, study):
    folder = _run(study, "fifo")
    folder.file("metrics.csv").unlink()
    os.mkfifo(folder.file("metrics.csv"))


def _deep_summary(tmp, study):
    _run(study, "deep_summary").file("summary.json").write_text('{"seed": ' + "[" * DEEP + "]" * DEEP + "}")


def _deep_config(tmp, study):
    _run(study, "deep_config").file("config.yaml").write_text("model: " + "[" * DEEP + "]" * DEEP + "\n")


def _deep_overrides(tmp, study):
    folder = _run(study, "deep_overrides", extra_summary={"overrides": None})
    folder.hydra.mkdir()
    (folder.hydra / "overrides.yaml").write_text("[" * DEEP + "]" * DEEP + "\n")


def _inf(column):
    def make(tmp, study):
        folder = _run(study, f"inf_{column}")
        lines = folder.file("metrics.csv").read_text().splitlines()
        if column not in lines[0].split(","):
            lines = [f"{lines[0]},{column}"] + [f"{r},0" for r in lines[1:]]
        header = lines[0].split(",")
        row = lines[2].split(",")
        row[header.index(column)] = "inf"
        lines[2] = ",".join(row)
        folder.file("metrics.csv").write_text("\n".join(lines) + "\n")

    return make


def _summary_types(tmp, study):
    folder = _run(study, "summary_types")
    summary = json.loads(folder.file("summary.json").read_text())
    summary.update(overrides=5, best="x")
    folder.file("summary.json").write_text(json.dumps(summary))


def _hydra_link(tmp, study):
    crashed = study / "hydra_link"
    (crashed / ".hydra").mkdir(parents=True)
    _link(crashed / ".hydra" / "config.yaml", _outside(tmp, "hydra.yaml"))


def _slug_clash(tmp, study):
    for end in ("one", "two"):
        _run(study, "v" * 85 + end)


def _sweep_indexes(tmp, study):
    for sweep, text in (
        ("deep_index", "[" * DEEP + "]" * DEEP),
        (
            "typed_index",
            json.dumps(
                {
                    "jobs": {
                        "0": {"overrides": 5, "status": "failed", "run_dir": 7},
                        "1": {"overrides": ["seed=9"], "status": "failed", "run_dir": None, "error": "lost"},
                    }
                }
            ),
        ),
    ):
        (study / sweep).mkdir()
        (study / sweep / "sweep_index.json").write_text(text)
    (study / "linked_index").mkdir()
    _link(study / "linked_index" / "sweep_index.json", _outside(tmp, "index.json"))


CRAFTED = [
    ("url_card_s2", _url_card, None),
    ("link_metrics_s2", _linked("metrics.csv"), "metrics.csv"),
    ("link_config_s2", _linked("config.yaml"), "config.yaml"),
    ("link_confusion_matrix_s2", _linked("confusion_matrix.csv"), "confusion_matrix.csv"),
    ("link_per_class_accuracy_s2", _linked("per_class_accuracy.csv"), "per_class_accuracy.csv"),
    ("dev_zero_s2", _dev_zero, "summary.json"),
    ("fifo_s2", _fifo, "metrics.csv"),
    ("deep_summary_s2", _deep_summary, "summary.json"),
    ("deep_config_s2", _deep_config, "config.yaml"),
    ("deep_overrides_s2", _deep_overrides, ".hydra/overrides.yaml"),
    ("inf_epoch_s2", _inf("epoch"), "metrics.csv"),
    ("inf_step_s2", _inf("step"), "metrics.csv"),
    ("summary_types_s2", _summary_types, "summary.json"),
    ("hydra_link", _hydra_link, ".hydra/config.yaml"),
    ("slug_clash", _slug_clash, None),
    ("sweep_indexes", _sweep_indexes, None),
]


def _snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Every path under ``root`` but ``skip`` with its size and modification time (links not followed)."""
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in dirs + files:
            info = Path(folder, name).lstat()
            state[str(Path(folder, name))] = (info.st_size, info.st_mtime_ns, info.st_mode)
    return state


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _guard(tmp: Path) -> Path:
    """The folder holding the network guard (made before a snapshot of ``tmp`` is taken)."""
    guard = tmp / "guard"
    if not guard.is_dir():
        guard.mkdir()
        (guard / "sitecustomize.py").write_text(GUARD)
    return guard


def _report(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``python -m visionlab.report`` under the caps and the network guard; (the process, connects seen)."""
    guard = _guard(tmp)
    marker = tmp / "connects.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")]),
        "NETWORK_MARKER": str(marker),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "visionlab.report", *args],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        env=env,
        preexec_fn=_limits,
        cwd=tmp,
        check=False,
    )
    connects = marker.read_text().splitlines() if marker.exists() else []
    marker.unlink(missing_ok=True)
    return done, connects


def test_the_network_guard_catches_a_connect(tmp_path):
    """The guard the tests below rely on really fails a connect (and records it)."""
    script = (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)\nexcept OSError as "
        "e:\n"
        "    print('refused:', e)\n"
    )
    marker = tmp_path / "connects.txt"
    env = {
        **os.environ,
        "PYTHONPATH": str(_guard(tmp_path)),
        "NETWORK_MARKER": str(marker),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert "refused: network use refused by the test" in done.stdout
    assert marker.read_text().splitlines() == ["(('127.0.0.1', 9),)"]


def test_a_report_over_every_crafted_record_skips_each_one_and_reports_the_rest(tmp_path):
    study = tmp_path / "study"
    _run(study, "baseline")
    for _, make, _ in CRAFTED:
        make(tmp_path, study)
    out = tmp_path / "out"
    _guard(tmp_path)
    before = _snapshot(tmp_path, out)
    done, connects = _report(
        tmp_path, str(study), "--out", str(out), "--no-figures", "--copy-records", str(out / "records")
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert connects == []  # the URL card fetched nothing
    assert _snapshot(tmp_path, out) == before  # nothing outside --out written, changed or removed
    written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not [p for p, data in written.items() if SECRET.encode() in data]
    markdown = (out / "REPORT.md").read_text()
    numbers = json.loads((out / "report.json").read_text())
    caveats = markdown.split("## Caveats\n")[1].split("\n## ")[0]
    for name, _, file in CRAFTED:
        if file is not None:
            assert f"- run {name} skipped: {file}: " in caveats, name
    skipped = [line for line in caveats.splitlines() if " skipped: " in line and line.startswith("- run ")]
    assert len(skipped) == sum(file is not None for _, _, file in CRAFTED)
    assert (
        "- run link_metrics_s2 skipped: metrics.csv: a link to a file outside the run folder; not read"
        in caveats
    )
    assert (
        "- run dev_zero_s2 skipped: summary.json: a link to a file outside the run folder; not read"
        in caveats
    )
    assert "- run fifo_s2 skipped: metrics.csv: a FIFO, not a regular file; not read" in caveats
    assert "- run deep_summary_s2 skipped: summary.json: nested more than 64 levels deep" in caveats
    assert "- run inf_epoch_s2 skipped: metrics.csv: line 3: epoch is not a finite whole number" in caveats
    assert "- run summary_types_s2 skipped: summary.json: 'best' has the wrong type (str)" in caveats
    # the sweep indexes: one refused, one read but for its bad job, one a link out of its folder
    assert "deep_index/sweep_index.json not read: nested more than 64 levels deep" in caveats
    assert "sweep_index.json: job 0 skipped: overrides is not a list of strings" in caveats
    assert "sweep job **failed** without a run folder: `seed=9`: lost" in caveats
    assert "linked_index/sweep_index.json not read: a link to a file outside the run folder" in caveats
    # the rest is reported: the good runs, the URL card's run with what its card left out
    assert {r["name"] for r in numbers["runs"]} == {
        "baseline_s2",
        "url_card_s2",
        "v" * 85 + "one_s2",
        "v" * 85 + "two_s2",
    }
    (timm,) = [c for c in numbers["cards"] if c["variants"] == ["url_card"]]
    assert timm["left_out"] == [
        "model.net.pretrained=True (a card never fetches weights)",
        "model.net.args.cache_dir",
        "model.net.args.depth",
        "model.net.args.pretrained_cfg_overlay",
    ]
    assert timm["parameters"] == 11_198_571  # resnet18 for 43 classes, built without the crafted depth
    assert not list((tmp_path / "outside" / "timm_cache").iterdir())
    figures = [block["figure"] for block in numbers["page"] if "figure" in block]
    assert len(figures) == len(set(figures)) and len([f for f in figures if "vvvv" in f]) == 4
    assert sorted(p.name for p in (out / "records").iterdir()) == sorted(r["name"] for r in numbers["runs"])


@pytest.mark.parametrize("case", ["out_is_a_file", "missing_path", "deep_reference"])
def test_a_refused_argument_is_one_line_and_exit_2_before_any_work(tmp_path, case):
    study = tmp_path / "study"
    _run(study, "baseline")
    out = tmp_path / "out"
    args = [str(study), "--out", str(out), "--no-figures"]
    if case == "out_is_a_file":
        out.write_text("keep me\n")
    elif case == "missing_path":
        args[0] = str(tmp_path / "no_such_folder")
    else:
        (tmp_path / "reference.yaml").write_text("[" * DEEP + "]" * DEEP)
        args += ["--reference", str(tmp_path / "reference.yaml")]
    _guard(tmp_path)
    before = _snapshot(tmp_path, tmp_path / "nothing")
    done, connects = _report(tmp_path, *args)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    expected = {
        "out_is_a_file": f"error: --out {out} is a file, not a folder",
        "missing_path": f"error: {tmp_path / 'no_such_folder'}: no such folder",
        "deep_reference": f"error: {tmp_path / 'reference.yaml'}: not read: nested more than 64 levels deep",
    }
    assert lines[0].startswith(expected[case])
    assert (
        connects == [] and _snapshot(tmp_path, tmp_path / "nothing") == before
    )  # nothing made, nothing changed


# ------------------------------------------------------------------ the reader, the copy and the slugs
# in-process
def test_copy_records_copies_bytes_of_files_inside_the_folder_never_a_links_target(tmp_path):
    folder = _run(tmp_path / "runs", "cnn")
    _link(folder.file("per_class_accuracy.csv"), _outside(tmp_path, "pca.csv"))
    _link(
        folder.file("test_cases.csv"), folder.file("metrics.csv")
    )  # a link inside the folder: its bytes copied
    copied = folder.copy_audit_files(tmp_path / "copy")
    assert (
        "per_class_accuracy.csv" not in copied and not (tmp_path / "copy" / "per_class_accuracy.csv").exists()
    )
    assert (tmp_path / "copy" / "test_cases.csv").read_bytes() == folder.file("metrics.csv").read_bytes()
    assert not any(p.is_symlink() for p in (tmp_path / "copy").iterdir())


def test_the_reader_counts_what_it_reads_not_what_stat_says(tmp_path, monkeypatch):
    """A file that grows while read (or a size the file system misreports) cannot get past the bound."""
    from visionlab.record import files

    path = tmp_path / "grows.json"
    path.write_text("x" * 200)
    real_fstat = os.fstat
    monkeypatch.setattr(
        files.os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 10, *real_fstat(fd)[7:]))
    )
    with pytest.raises(files.TooLarge, match="more than the 100 bytes a report reads"):
        files.read_bounded(path, tmp_path, limit=100)
    assert files.read_bounded(path, tmp_path, limit=200) == b"x" * 200


def test_slugs_are_unique_where_names_share_their_start_or_differ_in_punctuation():
    long_one, long_two = "v" * 85 + "one", "v" * 85 + "two"
    assert slug(long_one, [long_one, long_two]) != slug(long_two, [long_one, long_two])
    assert len(slug(long_one)) == 80
    assert slug("a b", ["a b", "a_b"]) != slug("a_b", ["a b", "a_b"])
    assert (
        slug("cnn_best (data.scale=0)", ["cnn_best (data.scale=0)", "cnn_sgd"]) == "cnn_best__data_scale_0_"
    )


# ------------------------------------------------------------------ writing: atomic, all or nothing
def _doc(text: str, figures: dict[str, bytes]) -> render.Document:
    doc = render.Document("t")
    doc.add(render.Paragraph(text), *[render.Figure(n, lambda d=d: d, n) for n, d in figures.items()])
    return doc


def test_a_second_report_replaces_the_first_whole_and_removes_its_stale_figures(tmp_path):
    render.write(_doc("first", {"a.png": b"A1", "b.png": b"B1"}), tmp_path, numbers={"n": 1})
    render.write(_doc("second", {"a.png": b"A2"}), tmp_path, numbers={"n": 2})
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["a.png"]
    assert (tmp_path / "figures" / "a.png").read_bytes() == b"A2" and "second" in (
        tmp_path / "REPORT.md"
    ).read_text()
    assert json.loads((tmp_path / "report.json").read_text()) == {"n": 2}
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_full_disk_leaves_the_old_report_whole_and_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    from visionlab.cli.report import main

    study = tmp_path / "study"
    _run(study, "baseline")
    out = tmp_path / "out"
    assert main([str(study), "--out", str(out), "--no-figures"]) == 0
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    stage, calls = render._stage, []

    def full(path, data, staged):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        stage(path, data, staged)

    monkeypatch.setattr(render, "_stage", full)
    assert main([str(study), "--out", str(out), "--no-figures", "--title", "new"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"error: cannot write the report to {out} (No space left on device"
    )
    assert {
        p: p.read_bytes() for p in out.rglob("*") if p.is_file()
    } == old  # nothing half-written, no temp file
    monkeypatch.undo()
    assert main([str(study), "--out", str(out), "--no-figures", "--title", "new"]) == 0
    assert f"replaced the earlier report: {out / 'REPORT.md'}" in capsys.readouterr().out  # said, not silent
    assert (out / "REPORT.md").read_text().startswith("# new")


_KILLED_WRITE = """
import os, signal, sys
from visionlab.report.render import document as render
stage, count = render._stage, []
def dying(path, data, staged):
    count.append(path)
    if len(count) == int(sys.argv[1]):  # this file half-written under its temporary name, then killed
        stage(path, data[: len(data) // 2], staged)
        os.kill(os.getpid(), signal.SIGKILL)
    stage(path, data, staged)
replace = os.replace
def dying_rename(src, dst):
    if sys.argv[2] == "rename" and str(dst).endswith("report.html"):
        os.kill(os.getpid(), signal.SIGKILL)
    replace(src, dst)
render._stage = dying
render.os.replace = dying_rename
doc = render.Document("new")
doc.add(render.Paragraph("new " * 5000), render.Figure("a.png", lambda: b"A2" * 5000, "a"))
render.write(doc, render.Path(sys.argv[3]), numbers={"new": True})
"""


@pytest.mark.parametrize(("kill_at", "when"), [(2, "stage"), (99, "rename")])
def test_killed_while_writing_no_report_file_is_ever_half_written(tmp_path, kill_at, when):
    """kill -9 while a temporary file is half-written (the old report stays whole), or between two renames
    (each file whole, old or new); the next write removes the temporary files the killed one left."""
    render.write(_doc("old " * 5000, {"a.png": b"A1" * 5000}), tmp_path, numbers={"new": False})
    old = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITE, str(kill_at), when, str(tmp_path)],
        timeout=120,
        check=False,
        capture_output=True,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    now = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".tmp")}
    new = {"a.png": b"A2" * 5000, "report.json": json.dumps({"new": True}, indent=2).encode()}
    for name, data in now.items():
        assert (
            data == old[name]
            or (name in new and data == new[name])
            or (name == "REPORT.md" and data.startswith(b"# new"))
        ), name
    if when == "stage":
        assert now == old
    else:
        assert now["REPORT.md"].startswith(b"# new") and now["report.html"] == old["report.html"]
    render.write(_doc("again", {"a.png": b"A3"}), tmp_path, numbers={})
    assert not list(tmp_path.rglob("*.tmp"))
