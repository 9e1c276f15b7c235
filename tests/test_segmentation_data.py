"""Segmentation data: the three formats, split making, validation errors, augmentation alignment."""

import logging

import numpy as np
import pytest
import torch

from data_helpers import datamodule, recipe
from seg_helpers import save_png, tiny_arrays
from visionlab.config.errors import ConfigError, DataError
from visionlab.data.batched_ops import batch_generator
from visionlab.data.segmentation.augment import SegmentationBatchAugment
from visionlab.data.segmentation.datamodule import AugmentedSegmentation
from visionlab.data.segmentation.sources import load_segmentation
from visionlab.data.segmentation.synthetic import make_synthetic_seg

SMALL = {"image_size": 64, "num_workers": 0, "batch_size": 2, "eval_batch_size": 2}


def file_datamodule(path, **overrides):
    return datamodule("seg_npz", data_dir=str(path), format="auto", **SMALL, **overrides)


def test_npz_channels_first_float_and_0_255_masks(tmp_path):
    a = tiny_arrays()
    npz = tmp_path / "course.npz"
    np.savez(
        npz,
        x_train=a["x_train"].transpose(0, 3, 1, 2) / 255.0,
        y_train=a["y_train"] * 255,
        x_val=a["x_val"].transpose(0, 3, 1, 2) / 255.0,
        y_val=a["y_val"][:, None] * 255,
        x_test=a["x_test"][..., 0],
        y_test=a["y_test"].astype(np.float32),
    )
    arrays, source = load_segmentation(npz, "auto", channels=1, image_size=64)
    assert source == f"npz:{npz}"
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        assert arrays[f"x_{split}"].shape == (n, 64, 64, 1) and arrays[f"x_{split}"].dtype == np.uint8
        assert arrays[f"y_{split}"].shape == (n, 64, 64) and arrays[f"y_{split}"].dtype == np.uint8
        np.testing.assert_array_equal(
            arrays[f"x_{split}"], a[f"x_{split}"]
        )  # [0,1] floats round-trip exactly
        np.testing.assert_array_equal(arrays[f"y_{split}"], a[f"y_{split}"])


def test_npz_is_resized_to_image_size_with_masks_kept_binary(tmp_path):
    a = tiny_arrays(size=96)
    np.savez(
        tmp_path / "d.npz", x_train=a["x_train"], y_train=a["y_train"], x_val=a["x_val"], y_val=a["y_val"]
    )
    arrays, _ = load_segmentation(tmp_path / "d.npz", "npz", 1, 64)
    assert arrays["x_train"].shape == (6, 64, 64, 1) and arrays["y_train"].shape == (6, 64, 64)
    assert set(np.unique(arrays["y_train"])) == {0, 1}
    assert "x_test" not in arrays


def test_folder_pair_any_size_resized_and_split_folders(tmp_path):
    a = tiny_arrays(size=80)
    for i in range(4):
        save_png(tmp_path / "flat" / "images" / f"c{i}.png", a["x_train"][i, ..., 0])
        save_png(tmp_path / "flat" / "masks" / f"c{i}.png", a["y_train"][i] * 255)
    save_png(tmp_path / "flat" / "images" / "big.png", np.zeros((128, 96), np.uint8))  # another size
    save_png(tmp_path / "flat" / "masks" / "big.png", np.ones((128, 96), np.uint8))  # 0/1 mask file
    arrays, source = load_segmentation(tmp_path / "flat", "auto", 1, 64)
    assert source.startswith("folder:")
    assert arrays["x_train"].shape == (5, 64, 64, 1) and arrays["x_train"].dtype == np.uint8
    assert arrays["y_train"].shape == (5, 64, 64) and set(np.unique(arrays["y_train"])) == {0, 1}
    assert arrays["y_train"][0].all()  # "big" sorts first and is all foreground
    for split, idx in (("train", range(3)), ("val", [3])):
        for i in idx:
            save_png(tmp_path / "split" / split / "images" / f"{i}.png", a["x_train"][i, ..., 0])
            save_png(tmp_path / "split" / split / "masks" / f"{i}.png", a["y_train"][i] * 255)
    arrays, _ = load_segmentation(tmp_path / "split", "folder", 1, None)
    assert arrays["x_train"].shape == (3, 80, 80, 1) and arrays["x_val"].shape == (1, 80, 80, 1)
    np.testing.assert_array_equal(arrays["y_val"][0], a["y_train"][3])


def test_isbi_like_train_only_file_gets_seeded_splits_and_says_so(tmp_path, caplog):
    a = tiny_arrays(n_train=30)
    folder = tmp_path / "isbi"
    folder.mkdir()
    np.savez(
        folder / "membranes.npz",
        x_train=a["x_train"].transpose(0, 3, 1, 2),
        y_train=a["y_train"][:, None],
        x_test_unlabeled=a["x_test"],
    )
    with caplog.at_level(logging.INFO):
        dm = file_datamodule(folder)
        dm.setup("fit")
    assert [dm.split_size(s) for s in ("train", "val", "test")] == [18, 6, 6] and dm.test_available
    assert "18 train / 6 val / 6 test" in caplog.text and "split_seed=0" in caplog.text
    assert dm.notes and "no labelled val or test split" in dm.notes[0]
    dm2 = file_datamodule(folder / "membranes.npz")
    dm2.setup("fit")
    torch.testing.assert_close(dm.splits["test"][0], dm2.splits["test"][0])  # same seed → same split
    all_cases = np.concatenate([dm.arrays["y_train"], dm.arrays["y_val"], dm.arrays["y_test"]])
    assert len(np.unique(all_cases.reshape(30, -1), axis=0)) == 30  # no case in two splits


@pytest.mark.parametrize(
    "bad,message",
    [
        ("count", r"\[x_train/y_train\]: 6 images but 5 masks"),
        ("size", r"images are 64×64 but masks are 64×32"),
        (
            "values",
            r"\[y_train\]: masks must hold only \{0,1\} or only \{0,255\}; found value 128 \(e.g. in case 2",
        ),
        ("empty", r"\[x_val\]: the val split is empty"),
        ("range", r"\[x_train\]: float images must lie in \[0,1\], found values in \[0, 255\]"),
        ("keys", r"needs the keys x_train and y_train"),
    ],
)
def test_bad_npz_names_the_file_key_and_value(tmp_path, bad, message):
    a = tiny_arrays()
    x, y = a["x_train"], a["y_train"].copy()
    extra = {"x_val": a["x_val"], "y_val": a["y_val"]}
    if bad == "count":
        y = y[:5]
    elif bad == "size":
        y = y[:, :, :32]
    elif bad == "values":
        y[2, 5, 5] = 128
    elif bad == "empty":
        extra = {"x_val": x[:0], "y_val": y[:0]}
    elif bad == "range":
        x = x.astype(np.float32)
    elif bad == "keys":
        extra = {"images": x}
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=x, y_train=y, **extra) if bad != "keys" else np.savez(path, **extra)
    before = path.read_bytes()
    with pytest.raises(DataError, match=message) as info:
        file_datamodule(path).setup("fit")
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # nothing is overwritten


def test_bad_folders_and_paths(tmp_path):
    a = tiny_arrays()
    for i in range(3):
        save_png(tmp_path / "f" / "images" / f"{i}.png", a["x_train"][i, ..., 0])
    for i in (0, 1, 7):
        save_png(tmp_path / "f" / "masks" / f"{i}.png", a["y_train"][i % 6] * 255)
    with pytest.raises(DataError, match=r"3 images but 3 masks.*No mask for: 2\. No image for mask: 7"):
        load_segmentation(tmp_path / "f")
    with pytest.raises(DataError, match=r"data.data_dir=.*nowhere does not exist"):
        load_segmentation(tmp_path / "nowhere")
    with pytest.raises(DataError, match="the val split made from 2 training images is empty"):
        np.savez(tmp_path / "two.npz", x_train=a["x_train"][:2], y_train=a["y_train"][:2])
        file_datamodule(tmp_path / "two.npz").setup("fit")


STRONG = {
    "elastic": {"alpha": 500.0, "sigma": 12.0, "p": 1.0},
    "shift": 0.1,
    "rotate": 20.0,
    "scale": 0.1,
    "brightness": 0.0,
    "contrast": 0.0,
    "p_affine": 1.0,
}


def _augment(backend: str, images: np.ndarray, masks: np.ndarray, indices: list[int], seed: int = 3):
    """One augmented batch as (uint8 N×H×W images, uint8 N×H×W masks) from either backend."""
    strong = recipe("synthetic_seg", **STRONG)
    if backend == "albumentations":
        x, y = AugmentedSegmentation(images, masks, seed=seed, recipe=strong).__getitems__(indices)
        return x[..., 0], y
    x, y = SegmentationBatchAugment(strong)(
        torch.from_numpy(images[indices]),
        torch.from_numpy(masks[indices]),
        batch_generator(seed, 0, indices[0]),
    )
    assert x.dtype == torch.float32 and x.shape[1] == 1
    return (x[:, 0] * 255).round().to(torch.uint8), y


@pytest.mark.parametrize("backend", ["batched", "albumentations"])
def test_augmentation_keeps_image_and_mask_aligned_and_masks_binary(backend):
    # a synthetic pattern: the image *is* the mask (×255), so any misalignment shows up as disagreement
    masks = make_synthetic_seg(n_train=8, n_val=0, n_test=0, size=64, seed=5)["y_train"]
    images = (masks * 255).astype(np.uint8)[..., None]
    changed = 0
    for start in range(0, 8, 4):
        image, y = _augment(backend, images, masks, list(range(start, start + 4)))
        assert image.shape == (4, 64, 64) and y.shape == (4, 64, 64) and y.dtype == torch.uint8
        assert set(y.unique().tolist()) <= {0, 1}  # exactly binary after elastic + affine (nearest)
        image = image.long()
        interior = (image == 0) | (
            image == 255
        )  # away from edges linear interpolation leaves 0/255 untouched
        assert interior.float().mean() > 0.7
        assert torch.equal((image[interior] == 255).to(torch.uint8), y[interior])  # identical geometry
        agree = ((image > 127).to(torch.uint8) == y).float().mean(dim=(1, 2))
        assert agree.min() > 0.95, agree  # edge pixels: linear (image) vs nearest (mask) interpolation
        shifted = torch.roll(y, shifts=2, dims=2)  # a 2-pixel misalignment would be visible
        assert ((image > 127).to(torch.uint8) == shifted).float().mean() < agree.mean() - 0.02
        changed += int((y != torch.from_numpy(masks[start : start + 4])).any(dim=(1, 2)).sum())
    assert changed == 8  # every sample was really deformed
    x1, y1 = _augment(backend, images, masks, [1, 2])
    x2, y2 = _augment(backend, images, masks, [1, 2])
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # seeded by the batch, not by call order
    x3, _ = _augment(backend, images, masks, [1, 2], seed=4)
    assert not torch.equal(x1, x3)


def test_synthetic_set_is_deterministic_and_eval_splits_are_not_augmented():
    kwargs = dict(n_train=4, n_val=2, n_test=2, **SMALL)
    dm = datamodule("synthetic_seg", data_seed=1, **kwargs)
    dm.setup("fit")
    again = datamodule("synthetic_seg", data_seed=1, **kwargs)
    again.setup("fit")
    other = datamodule("synthetic_seg", data_seed=2, **kwargs)
    other.setup("fit")
    np.testing.assert_array_equal(dm.arrays["x_train"], again.arrays["x_train"])
    assert not np.array_equal(dm.arrays["x_train"], other.arrays["x_train"])
    fg = dm.arrays["y_train"].mean()
    assert 0.15 < fg < 0.85  # blobs, neither empty nor full
    x, y, case = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert x.dtype == torch.uint8 and x.shape == (2, 64, 64, 1)
    assert case.tolist() == list(range(len(y)))  # the case indices, for gathering results under DDP
    np.testing.assert_array_equal(x.numpy(), dm.arrays["x_val"])
    np.testing.assert_array_equal(y.numpy(), dm.arrays["y_val"])
    # foreground is brighter on average, but not separable by one threshold
    img, mask = dm.arrays["x_train"][..., 0].astype(float), dm.arrays["y_train"].astype(bool)
    assert img[mask].mean() > img[~mask].mean() + 20
    best_threshold_acc = max(((img > t) == mask).mean() for t in range(60, 200, 5))
    assert best_threshold_acc < 0.95


def test_a_stack_is_split_into_contiguous_blocks_that_never_touch_training(tmp_path):
    """ISBI's 30 slices: val and test are blocks of consecutive slices at the end of the stack, each after an
    unused gap slice; the data description names every split's slices."""
    a = tiny_arrays(n_train=30)
    x = np.repeat(np.arange(30, dtype=np.uint8)[:, None, None, None], 64, axis=1).repeat(
        64, axis=2
    )  # pixel = slice
    np.savez(tmp_path / "stack.npz", x_train=x, y_train=a["y_train"])
    dm = file_datamodule(tmp_path / "stack.npz", split_mode="contiguous")
    dm.setup("fit")
    slices = {s: sorted(int(v) for v in dm.arrays[f"x_{s}"][:, 0, 0, 0]) for s in ("train", "val", "test")}
    assert slices == {"train": list(range(16)), "val": list(range(17, 23)), "test": list(range(24, 30))}
    held_out = set(slices["val"]) | set(slices["test"])
    assert not any(abs(t - h) <= 1 for t in slices["train"] for h in held_out)  # no training neighbour
    assert dm.description.endswith(
        "(splits made from train: 16 train / 6 val / 6 test; contiguous blocks of the "
        "stack: train 0–15, val 17–22, test 24–29, unused gap 16, 23; "
        "data.split_mode=contiguous)"
    )
    random = file_datamodule(tmp_path / "stack.npz")  # the default keeps the seeded permutation
    random.setup("fit")
    assert random.split_size("train") == 18 and "data.split_seed=0" in random.notes[0]


def test_contiguous_split_errors_name_the_key(tmp_path):
    a = tiny_arrays(n_train=4)
    np.savez(tmp_path / "four.npz", x_train=a["x_train"], y_train=a["y_train"])
    with pytest.raises(
        DataError,
        match=r"4 ordered cases cannot hold a training block, held-out blocks of \[1, 1\] "
        r"and 2 gap case\(s\).*data.split_mode=random",
    ):
        file_datamodule(tmp_path / "four.npz", split_mode="contiguous").setup("fit")
    from visionlab.config.errors import ConfigError

    with pytest.raises(ConfigError, match="data.split_mode='blocks' is not one of"):
        file_datamodule(tmp_path / "four.npz", split_mode="blocks").setup("fit")


@pytest.mark.parametrize("backend", ["batched", "albumentations"])
def test_a_fixed_epoch_of_samples_whatever_the_training_set_size(backend):
    """data.samples_per_epoch: 10 samples per epoch from 4 training images, each image 2–3 times, in both
    backends, so a small set gets the optimizer steps of a large one."""
    dm = datamodule(
        "synthetic_seg",
        data_seed=1,
        n_train=4,
        n_val=2,
        n_test=0,
        samples_per_epoch=10,
        augment_backend=backend,
        **SMALL,
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader) == 5  # 10 samples / batch 2
    batches = (
        [dm.on_after_batch_transfer(batch, 0) for batch in loader] if backend == "batched" else list(loader)
    )
    masks = torch.cat([y for _, y in batches])
    assert masks.shape[0] == 10
    truth = torch.from_numpy(dm.arrays["y_train"]).float().mean(dim=(1, 2))
    seen = torch.tensor([int(torch.isclose(m.float().mean(), truth, atol=0.08).any()) for m in masks])
    assert (
        seen.all()
    )  # every sample is one of the 4 images (augmented: its foreground share within ±8 points)
    plain = datamodule("synthetic_seg", data_seed=1, n_train=4, n_val=2, n_test=0, **SMALL)
    plain.setup("fit")
    assert len(plain.train_dataloader()) == 2  # without it: one pass over the 4 images


def test_samples_per_epoch_and_train_repeats_cannot_both_set_the_epoch():
    with pytest.raises(ConfigError, match=r"data.samples_per_epoch=10 and data.train_repeats=2"):
        datamodule(
            "synthetic_seg",
            data_seed=1,
            n_train=4,
            n_val=2,
            n_test=0,
            samples_per_epoch=10,
            train_repeats=2,
            **SMALL,
        )
    with pytest.raises(ConfigError, match=r"data.samples_per_epoch=0"):
        datamodule("synthetic_seg", data_seed=1, n_train=4, n_val=2, n_test=0, samples_per_epoch=0, **SMALL)
