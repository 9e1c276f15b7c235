"""data.download=true for ISBI 2012, without network: a fake stack served from 127.0.0.1 (or a file://
URL)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from visionlab.config.errors import DataError
from visionlab.data.segmentation.download import CACHE_NAME, RAW_NAME, Source, ensure_isbi2012

REPO = Path(__file__).resolve().parents[1]
N, SIDE = 5, 512


def fake_stack(membrane_value: int = 0, interior_value: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """N EM-like slices and labels: a membrane grid (the thin minority) around cell interiors."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, SIDE, SIDE), dtype=np.uint8)
    labels = np.full((N, SIDE, SIDE), interior_value, np.uint8)
    for i in range(N):
        labels[i, :, 40 + 10 * i :: 64] = membrane_value
        labels[i, 40 + 10 * i :: 64, :] = membrane_value
    return images, labels


def tiff_zip(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A zip holding the challenge's train-volume.tif / train-labels.tif (multi-page TIFFs)."""
    from PIL import Image

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, stack in (("train-volume.tif", images), ("train-labels.tif", labels)):
            pages = [Image.fromarray(page) for page in stack]
            tif = io.BytesIO()
            pages[0].save(tif, format="TIFF", save_all=True, append_images=pages[1:])
            archive.writestr(f"isbi/{name}", tif.getvalue())
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server():
    """Serves ``server.files[path]`` on 127.0.0.1 and counts requests; shut down when the test ends."""
    files: dict[str, bytes] = {}
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.files, httpd.requests = files, requests
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/isbi"  # nothing listens there any more: connection refused


def expected_arrays(images: np.ndarray, interior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    x = np.stack([cv2.resize(im, (256, 256), interpolation=cv2.INTER_LINEAR) for im in images])[:, None]
    y = np.stack(
        [
            cv2.resize(m.astype(np.float32), (256, 256), interpolation=cv2.INTER_LINEAR) >= 0.5
            for m in interior
        ]
    )[:, None]
    return x, y.astype(np.uint8)


def test_download_is_verified_converted_cached_and_never_repeated(server, tmp_path, monkeypatch):
    images, labels = fake_stack()
    body = tiff_zip(images, labels)
    server.files["/isbi.zip"] = body
    monkeypatch.setenv("VISIONLAB_ISBI_URL", server.url + "/isbi.zip")
    monkeypatch.setenv("VISIONLAB_ISBI_SHA256", sha256(body))
    folder = tmp_path / "isbi2012"

    from data_helpers import datamodule

    dm = datamodule("isbi2012", data_dir=str(folder), download=True, num_workers=0)
    dm.setup("fit")
    assert server.requests == ["/isbi.zip"]
    assert sorted(p.name for p in folder.iterdir()) == [CACHE_NAME]  # no download, .part or temp file left
    with np.load(folder / CACHE_NAME, allow_pickle=False) as npz:
        x, y = npz["x_train"], npz["y_train"]
    want_x, want_y = expected_arrays(images, labels == 255)
    assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape == (N, 1, 256, 256)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    assert 0.5 < y.mean() < 1.0  # 1 = cell interior, the majority
    # data=isbi2012 splits the stack into contiguous blocks: one unused gap slice before val and before test
    assert sum(len(dm.arrays[f"x_{s}"]) for s in ("train", "val", "test")) == N - 2

    again = datamodule("isbi2012", data_dir=str(folder), download=True, num_workers=0)
    again.setup("fit")
    assert server.requests == ["/isbi.zip"]  # the cache is read; no second request
    np.testing.assert_array_equal(again.arrays["x_train"], dm.arrays["x_train"])


def test_checksum_mismatch_names_url_and_both_sums_and_leaves_nothing(server, tmp_path):
    body = tiff_zip(*fake_stack())
    server.files["/isbi.zip"] = body
    url, wrong = server.url + "/isbi.zip", "0" * 64
    folder = tmp_path / "isbi2012"
    with pytest.raises(DataError) as info:
        ensure_isbi2012(folder, Source(url, wrong))
    message = str(info.value)
    assert url in message and f"expected sha256 {wrong}" in message and f"got {sha256(body)}" in message
    assert list(folder.iterdir()) == []


def test_unreachable_url_fails_within_seconds_with_the_three_ways_out(tmp_path):
    url = closed_port_url()
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        ensure_isbi2012(tmp_path / "isbi2012", Source(url, "0" * 64))
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert url in message and str(tmp_path / "isbi2012" / RAW_NAME) in message
    for way in ("data.download=true", "data.data_dir=/path/to/your/data", "data=synthetic_seg"):
        assert way in message
    assert list((tmp_path / "isbi2012").iterdir()) == []


def test_a_file_saved_by_hand_is_verified_and_converted_offline(tmp_path):
    body = tiff_zip(*fake_stack())
    folder = tmp_path / "isbi2012"
    folder.mkdir()
    (folder / RAW_NAME).write_bytes(body)
    with pytest.raises(DataError, match="failed its checksum"):
        ensure_isbi2012(folder, Source(closed_port_url(), "0" * 64))
    assert (folder / RAW_NAME).exists()  # the user's file is not deleted
    assert ensure_isbi2012(folder, Source(closed_port_url(), sha256(body))) == folder / CACHE_NAME
    assert sorted(p.name for p in folder.iterdir()) == [CACHE_NAME]


def test_hdf5_source_over_file_url_with_membranes_as_ones(tmp_path):
    h5py = pytest.importorskip("h5py")
    images, labels = fake_stack(membrane_value=1, interior_value=0)  # polarity as a membrane map
    raw = tmp_path / "isbi.h5"
    with h5py.File(raw, "w") as f:
        f["raw"] = images
        f["labels/membranes"] = labels
        f["labels/gt_segmentation"] = np.zeros(labels.shape, np.uint32)
    target = ensure_isbi2012(tmp_path / "out", Source(raw.as_uri(), sha256(raw.read_bytes())))
    with np.load(target, allow_pickle=False) as npz:
        want_x, want_y = expected_arrays(images, labels == 0)
        np.testing.assert_array_equal(npz["x_train"], want_x)
        np.testing.assert_array_equal(npz["y_train"], want_y)


def test_missing_data_error_offers_the_three_ways_out(tmp_path):
    from visionlab.data.segmentation.sources import detect_format

    with pytest.raises(DataError) as info:
        detect_format(tmp_path / "nowhere")
    for way in (
        "data.download=true",
        "data.data_dir=/path/to/your/data",
        "images/ + masks/",
        "data=synthetic_seg",
    ):
        assert way in str(info.value)


def test_cli_download_without_network_is_one_message_and_exit_code_2(tmp_path, monkeypatch, capsys):
    """What the CLI does with the composed config (in-process: the subprocess CLI path is the trust
    table's)."""
    from helpers import compose
    from visionlab.cli.train import _run_reporting_errors

    url = closed_port_url()
    monkeypatch.setenv("VISIONLAB_ISBI_URL", url)
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_elu",
            "data.download=true",
            f"data.data_dir={tmp_path / 'isbi2012'}",
            "logger=none",
        ],
    )
    with pytest.raises(SystemExit) as exited:
        _run_reporting_errors(cfg, multirun=False)
    output = "".join(capsys.readouterr())
    assert exited.value.code == 2, output[-3000:]
    assert "Traceback" not in output
    assert output.count(f"could not fetch the ISBI 2012 training stack from {url}") == 1
    assert "data=synthetic_seg" in output
