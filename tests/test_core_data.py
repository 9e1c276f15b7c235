import numpy as np
import pytest
import torch
from PIL import Image

from data_helpers import datamodule
from visionlab.config.errors import DataError
from visionlab.data.classification.sources import cache_file, load_gtsrb
from visionlab.data.classification.synthetic import make_synthetic_signs
from visionlab.data.splits import group_split
from visionlab.tracking.wandb.media import to_display


def test_group_split_keeps_every_class_track_on_one_side():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(43), 60)
    tracks = np.tile(np.repeat(np.arange(6), 10), 43)
    order = rng.permutation(len(labels))
    labels, tracks = labels[order], tracks[order]
    train, val = group_split(labels, tracks, 0.2, seed=7)
    pairs = lambda idx: set(zip(labels[idx].tolist(), tracks[idx].tolist()))
    assert pairs(train).isdisjoint(pairs(val))
    assert len(train) + len(val) == len(labels)
    assert set(labels[val].tolist()) == set(range(43))  # every class is validated
    assert 0.15 < len(val) / len(labels) < 0.25
    again = group_split(labels, tracks, 0.2, seed=7)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(group_split(labels, tracks, 0.2, seed=8)[1], val)


def test_synthetic_signs_are_deterministic_and_gtsrb_shaped():
    a = make_synthetic_signs(seed=1, tracks_per_class=2, frames_per_track=2, test_tracks_per_class=1)
    b = make_synthetic_signs(seed=1, tracks_per_class=2, frames_per_track=2, test_tracks_per_class=1)
    assert a["x_train"].shape == (43 * 4, 32, 32, 3) and a["x_train"].dtype == np.uint8
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(set(a["y_train"].tolist())) == list(range(43))


def _write_official_layout(root, n_classes=3, tracks=2, frames=3, corrupt=None):
    rng = np.random.default_rng(0)
    base = root / "gtsrb" / "GTSRB"
    for c in range(n_classes):
        folder = base / "Training" / f"{c:05d}"
        folder.mkdir(parents=True)
        for t in range(tracks):
            for f in range(frames):
                img = rng.integers(0, 255, (40 + f, 37, 3), dtype=np.uint8)
                Image.fromarray(img).save(folder / f"{t:05d}_{f:05d}.ppm")
    test_dir = base / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (33, 35, 3), dtype=np.uint8)).save(test_dir / f"{i:05d}.ppm")
        rows.append(f"{i:05d}.ppm;35;33;1;1;30;30;{i % n_classes}")
    (root / "gtsrb" / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    if corrupt:
        (base / "Training" / "00001" / "00000_00001.ppm").write_bytes(b"not an image")


def test_official_layout_is_decoded_once_then_loaded_from_the_cache(tmp_path):
    _write_official_layout(tmp_path / "raw")
    cache = tmp_path / "cache"
    arrays = load_gtsrb(tmp_path / "raw", cache)
    assert arrays["x_train"].shape == (3 * 2 * 3, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    assert arrays["y_train"].tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert arrays["track_train"].tolist() == ([0] * 3 + [1] * 3) * 3
    assert arrays["x_test"].shape == (4, 32, 32, 3) and arrays["y_test"].tolist() == [0, 1, 2, 0]
    cached = cache_file(cache, tmp_path / "raw")
    assert cached.exists()
    # the cache, not the images, is read the second time: remove the images and load again
    for ppm in (tmp_path / "raw").rglob("*.ppm"):
        ppm.unlink()
    again = load_gtsrb(tmp_path / "raw", cache)
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)


def test_prepared_npz_parts_are_concatenated_in_order(tmp_path):
    a = make_synthetic_signs(seed=1, tracks_per_class=1, frames_per_track=2, test_tracks_per_class=1)
    np.savez(
        tmp_path / "p1.npz",
        x_train=a["x_train"][:40],
        y_train=a["y_train"][:40],
        track_train=a["track_train"][:40],
    )
    np.savez(
        tmp_path / "p2.npz",
        x_train=a["x_train"][40:],
        y_train=a["y_train"][40:],
        track_train=a["track_train"][40:],
    )
    arrays = load_gtsrb(tmp_path, tmp_path / "cache")
    assert np.array_equal(arrays["x_train"], a["x_train"]) and np.array_equal(arrays["y_train"], a["y_train"])
    assert "x_test" not in arrays
    dm = datamodule("gtsrb", data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), num_workers=0)
    dm.setup("fit")
    assert dm.test_available is False


def test_missing_directory_names_the_path_and_the_three_ways(tmp_path):
    with pytest.raises(DataError) as err:
        load_gtsrb(tmp_path / "nowhere", tmp_path / "cache")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert (
        "data.data_dir" in message and "official GTSRB layout" in message and "data.download=true" in message
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda a: a.update(x_train=a["x_train"][:, :28]), "x_train has shape"),
        (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "x_train has dtype float32"),
        (lambda a: a["y_train"].__setitem__(0, 43), "labels outside 0..42"),
        (lambda a: a.pop("track_train"), "missing key 'track_train'"),
    ],
)
def test_malformed_npz_names_file_and_problem(tmp_path, change, expected):
    arrays = make_synthetic_signs(seed=1, tracks_per_class=1, frames_per_track=1, test_tracks_per_class=1)
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=expected) as err:
        load_gtsrb(tmp_path, tmp_path / "cache")
    assert "bad.npz" in str(err.value)


def test_corrupt_image_in_official_layout_names_the_file(tmp_path):
    _write_official_layout(tmp_path / "raw", corrupt=True)
    with pytest.raises(DataError, match="00000_00001.ppm: not a readable image"):
        load_gtsrb(tmp_path / "raw", tmp_path / "cache")


@pytest.mark.parametrize("backend", ["batched", "albumentations"])
def test_training_batches_are_augmented_crops_and_reproducible_per_epoch(backend):
    dm = datamodule(
        "synthetic_signs",
        tracks_per_class=2,
        frames_per_track=3,
        test_tracks_per_class=1,
        num_workers=0,
        batch_size=16,
        seed=5,
        augment_backend=backend,
    )
    dm.setup("fit")

    def first_batch(loader):
        x, y = dm.on_after_batch_transfer(next(iter(loader)), 0)[
            :2
        ]  # evaluation batches also carry case indices
        return (to_display(x) * 255).round().to(torch.uint8), y

    loader = dm.train_dataloader()
    images, labels = first_batch(loader)
    assert images.shape == (16, 3, 28, 28)
    again = first_batch(dm.train_dataloader())
    assert torch.equal(images, again[0])  # same seed, same epoch → same batch
    loader.sampler.set_epoch(1)
    assert not torch.equal(labels, first_batch(loader)[1])
    val_x = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)[0]  # (images, labels, case index)
    assert val_x.shape[1:] == (28, 28, 3) and val_x.dtype == torch.uint8
    # each augmented image differs from its source's plain centre crop (the sampler's first 16 indices)
    order = list(dm.train_dataloader().sampler)[:16]
    plain = dm.splits["train"][0][order][:, 2:30, 2:30].permute(0, 3, 1, 2)
    assert torch.equal(dm.splits["train"][1][order], labels)
    changed = (images.int() - plain.int()).abs().float().mean(dim=(1, 2, 3))
    assert (changed > 2.0).all(), changed


def _dark(**overrides):
    """A tiny synthetic sign set as if photographed in the dark: every pixel value divided by 4 (0..63)."""
    module = datamodule(
        "synthetic_signs", tracks_per_class=2, frames_per_track=3, test_tracks_per_class=1, **overrides
    )
    module.load_arrays = lambda: {
        k: (v // 4 if k.startswith("x_") else v) for k, v in type(module).load_arrays(module).items()
    }
    return module


@pytest.mark.parametrize("method", ["autocontrast", "equalize"])
def test_contrast_normalisation_spreads_every_split_of_a_dark_set_and_a_bad_method_is_named(method):
    """Every split the model sees is stretched to the full range, each image on its own; labels stay put."""
    from visionlab.config.errors import ConfigError

    before, after = _dark().load_splits(), _dark(contrast_norm=method).load_splits()
    for split in ("train", "val", "test"):
        assert before[split][0].max() < 64
        per_image_max = after[split][0].reshape(len(after[split][0]), -1).max(1)
        assert per_image_max.min() >= 250, (split, per_image_max.min())
        np.testing.assert_array_equal(before[split][1], after[split][1])
    with pytest.raises(
        ConfigError, match=r"data.contrast_norm='clahe' is not one of none, autocontrast, equalize"
    ):
        datamodule("synthetic_signs", contrast_norm="clahe")
