"""The fused batched augmentation: its shortcuts equal the plain constructions they replace, its output is
laid out as the model runs it, and a batch's augmentation depends only on its generator."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data_helpers import recipe
from visionlab.data.batched_ops import (
    _pooled_replicate_pad,
    batch_generator,
    normalised_theta,
    rotation,
    separable_affine_grid,
    smooth_noise,
)
from visionlab.data.classification.augment import SignBatchAugment
from visionlab.data.segmentation.augment import SegmentationBatchAugment


def test_sign_maps_equal_the_composed_pixel_maps():
    """The written-out θ of rotation ∘ crop ∘ flip equals rotate·(flip inside the crop + offset) composed in
    pixel space and converted by ``normalised_theta``."""
    augment = SignBatchAugment(**recipe("synthetic_signs"))
    height, width, crop = 32, 36, augment.crop
    p = augment.params(64, height, width, batch_generator(1, 2, 3))
    plain, mirrored = augment.thetas(p, height, width)
    rot = rotation(p["angle"])
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    offset = torch.stack([p["offset_x"], p["offset_y"]], -1).to(torch.float64)
    for flipped, theta in ((False, plain), (True, mirrored)):
        flip = torch.diag(torch.tensor([-1.0 if flipped else 1.0, 1.0], dtype=torch.float64))
        shift = offset + torch.tensor([crop - 1.0 if flipped else 0.0, 0.0], dtype=torch.float64)
        expected = normalised_theta(
            rot @ flip,
            torch.einsum("nij,nj->ni", rot, shift - centre) + centre,
            (height, width),
            (crop, crop),
        )
        np.testing.assert_allclose(theta, expected.reshape(-1, 6).numpy(), atol=1e-12)


def test_grid_and_noise_shortcuts_equal_the_plain_ops():
    theta = torch.eye(2, 3).repeat(5, 1, 1) + 0.1 * torch.randn(
        5, 2, 3, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(
        separable_affine_grid(theta, 24, 40),
        F.affine_grid(theta, [5, 1, 24, 40], align_corners=False),
        atol=1e-6,
        rtol=0,
    )
    noise = torch.randn(3, 2, 32, 48, generator=torch.Generator().manual_seed(1))
    for k, radius in ((2, 5), (4, 3)):
        plain = F.avg_pool2d(F.pad(noise, [radius * k] * 4, mode="replicate"), k)
        torch.testing.assert_close(_pooled_replicate_pad(noise, k, radius), plain, atol=1e-6, rtol=0)
    mix = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(2))
    mixed = torch.einsum("nij,njhw->nihw", mix, smooth_noise(noise, 8.0))
    torch.testing.assert_close(smooth_noise(noise, 8.0, mix), mixed, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("data", ["synthetic_signs", "synthetic_seg"])
def test_batched_output_is_channels_last_in_range_and_depends_only_on_the_generator(data):
    rng = np.random.default_rng(0)
    if data == "synthetic_signs":
        augment = SignBatchAugment(**recipe(data))
        images = torch.from_numpy(rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8))
        targets = torch.from_numpy(rng.choice([11, 14], 16))  # a flippable and a never-flipped class
    else:
        augment = SegmentationBatchAugment(recipe(data))
        images = torch.from_numpy(rng.integers(0, 256, (4, 64, 64, 1), dtype=np.uint8))
        targets = torch.from_numpy(rng.integers(0, 2, (4, 64, 64), dtype=np.uint8))
    first = augment(images, targets, batch_generator(5, 1, 9))
    again = augment(images.clone(), targets.clone(), batch_generator(5, 1, 9))
    other = augment(images, targets, batch_generator(5, 2, 9))
    x = first[0]
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert x.stride(1) == 1  # NHWC in memory, also for one channel (where "contiguous" is ambiguous)
    assert 0.0 <= x.min() and x.max() <= 1.0
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("data", ["synthetic_signs", "synthetic_seg"])
def test_cuda_augmentation_matches_the_cpu_and_never_waits_for_the_gpu(data):
    """Same parameters on both devices (all drawn on the CPU), so the same output up to float rounding; and
    after a first call (which moves constants there once) no call synchronises with the GPU, so it queues
    behind a step."""
    rng = np.random.default_rng(1)
    if data == "synthetic_signs":
        augment = SignBatchAugment(**recipe(data))
        images = torch.from_numpy(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8))
        targets = torch.from_numpy(rng.choice([11, 14], 64))
    else:
        augment = SegmentationBatchAugment(recipe(data))
        images = torch.from_numpy(rng.integers(0, 256, (4, 64, 64, 1), dtype=np.uint8))
        targets = torch.from_numpy(rng.integers(0, 2, (4, 64, 64), dtype=np.uint8))
    cpu = augment(images, targets, batch_generator(2, 0, 1))
    gpu_images, gpu_targets = images.cuda(), targets.cuda()
    augment(gpu_images, gpu_targets, batch_generator(2, 0, 0))  # warm-up: constants reach the device once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        gpu = augment(gpu_images, gpu_targets, batch_generator(2, 0, 1))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=1e-4, rtol=0)
    assert (
        gpu[1].cpu() != cpu[1]
    ).float().mean() < 1e-3  # nearest-neighbour masks: only exact ties may differ
