"""Augmentation ops on whole batches, on whatever device the batch lives on: both task families use them.

Every geometric transform is expressed as a map from output pixels to source pixels, so a whole recipe (crop,
flip, 90° turns, rotation, scale, shift, elastic field) costs one ``grid_sample`` per tensor. Random numbers
come from a CPU ``torch.Generator`` seeded by (seed, epoch, batch index): the same batch is augmented the same
way on a CPU or a GPU, with any number of loader workers, and after a resume.

Cost (the training loop waits for it every step): the per-sample parameters and 2×3 maps are composed on the
CPU in float64 (N numbers) and travel to the device in one small copy; everything of image size runs on the
batch's device in float32, in as few passes as possible: the grid is built there in one or two ops
(``F.affine_grid``, ``separable_affine_grid``, plus a smooth elastic field mixed into grid units on its coarse
grid), the uint8 → float conversion carries the 1/255 and any per-sample gain and offset (sampling is
affine-equivariant), and the last intensity pass writes the channels_last layout the model runs in. Sampling
stays float32 in every precision: a bf16 grid would be off by up to half a pixel on a 256² image,
``grid_sample`` wants image and grid in one dtype, and the model normalises in float32 anyway (on a CPU
without native bf16, bf16 sampling was also ~3× slower). Nothing here reads a device tensor back to the CPU or
copies a CPU tensor to the GPU without pinning it, so on a GPU the augmentation is queued behind the previous
step instead of waiting for it."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as OpenCV's RGB2GRAY (albumentations' contrast mean)


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """A CPU generator for one batch; distinct (seed, epoch, batch) triples give unrelated streams."""
    mixed = (int(seed) * 1_000_003 + int(epoch)) * 1_000_033 + int(batch)
    return torch.Generator().manual_seed(mixed & 0x7FFF_FFFF_FFFF_FFFF)


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A small CPU tensor on ``device``; to a GPU through pinned memory, so the copy is queued instead of
    waiting for the work already queued there (PyTorch caches pinned blocks: pinning a few KB per batch costs
    little)."""
    device = torch.device(device)
    if device.type == "cpu":
        return tensor
    if device.type == "cuda" and not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def uniform(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64) * (high - low) + low


def bernoulli(generator: torch.Generator, n: int, p: float) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64) < p


def rotation(angle_deg: torch.Tensor) -> torch.Tensor:
    """(N,) angles → (N, 2, 2) rotation matrices acting on (x, y) pixel coordinates."""
    a = torch.deg2rad(angle_deg)
    c, s = torch.cos(a), torch.sin(a)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def normalised_theta(
    matrix: torch.Tensor, offset: torch.Tensor, source_hw: tuple[int, int], output_hw: tuple[int, int]
) -> torch.Tensor:
    """Pixel-space backward maps (source = matrix @ output + offset, pixel centres at integers) → the (N, 2,
    3) ``theta`` of ``F.affine_grid``/``F.grid_sample`` with ``align_corners=False`` (coordinates in [-1,
    1])."""
    (src_h, src_w), (out_h, out_w) = source_hw, output_hw
    dtype = matrix.dtype
    to_pixels = torch.tensor([out_w / 2, out_h / 2], dtype=dtype)  # output: x = (u + 1)·W/2 − 1/2
    to_unit = torch.tensor([2.0 / src_w, 2.0 / src_h], dtype=dtype)  # source: u = (2x + 1)/W − 1
    linear = to_unit[:, None] * matrix * to_pixels[None, :]
    centre = torch.tensor([(out_w - 1) / 2, (out_h - 1) / 2], dtype=dtype)
    shift = to_unit * (torch.einsum("nij,j->ni", matrix, centre) + offset + 0.5) - 1.0
    return torch.cat([linear, shift[:, :, None]], dim=2)


@functools.lru_cache(maxsize=64)
def _on_device(values: tuple[float, ...], device: str, dtype: torch.dtype) -> torch.Tensor:
    """A constant vector on ``device``, made once: a plain ``.to(cuda)`` of a CPU tensor waits for the GPU."""
    return torch.tensor(values, dtype=torch.float64).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _gaussian_taps(sigma: float, radius: int, dtype: torch.dtype, device: str = "cpu") -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-(x**2) / (2 * sigma**2))
    return (taps / taps.sum()).to(device=device, dtype=dtype)


def _pooled_replicate_pad(noise: torch.Tensor, k: int, radius: int) -> torch.Tensor:
    """``F.avg_pool2d(F.pad(noise, [radius·k] * 4, mode="replicate"), k)`` without padding at full resolution:
    the k×k means of the image, and beyond its border the k-pixel means of the edge rows/columns (what the
    pooled replicated border holds), the corner pixels in the corners."""
    n, c, h, w = noise.shape
    inner = F.avg_pool2d(noise, k)
    left = noise[..., :, 0].reshape(n, c, h // k, k).mean(-1, keepdim=True).expand(-1, -1, -1, radius)
    right = noise[..., :, -1].reshape(n, c, h // k, k).mean(-1, keepdim=True).expand(-1, -1, -1, radius)
    middle = torch.cat([left, inner, right], dim=3)

    def edge_row(row: torch.Tensor) -> torch.Tensor:
        means = row.reshape(n, c, w // k, k).mean(-1)
        return torch.cat(
            [row[..., :1].expand(-1, -1, radius), means, row[..., -1:].expand(-1, -1, radius)], dim=2
        )

    top = edge_row(noise[..., 0, :])[:, :, None].expand(-1, -1, radius, -1)
    bottom = edge_row(noise[..., -1, :])[:, :, None].expand(-1, -1, radius, -1)
    return torch.cat([top, middle, bottom], dim=2)


def smooth_noise(noise: torch.Tensor, sigma: float, mix: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian blur of N×C×H×W white noise by ``sigma`` px with replicated borders, as OpenCV's GaussianBlur
    (radius 4σ) does inside albumentations' ElasticTransform, but cheap: blocks of k×k pixels (k ≤ σ/3) are
    averaged (the replicated border as if it had been padded at full resolution), the blur runs on that coarse
    grid with σ/k, and the result is upsampled bilinearly. For a field this smooth the coarse grid loses
    nothing visible, and the cost drops by ~k³ (a direct 97-tap blur of a 256² field pair took ~70 ms on 2
    cores).

    ``mix``: optional (N, C, C) per-sample matrices applied to the C-vector of every pixel; being linear and
    constant per image they commute with the blur and the upsampling, so they are applied on the coarse grid
    (a displacement field is scaled and turned into the sampling grid's units for the price of a few thousand
    pixels)."""
    n, c, h, w = noise.shape
    k = 1
    while k * 2 <= sigma / 3 and h % (k * 2) == 0 and w % (k * 2) == 0:
        k *= 2
    radius = -(-math.ceil(4 * sigma) // k)  # coarse taps each side
    if k > 1:
        flat = _pooled_replicate_pad(noise, k, radius).reshape(
            n * c, 1, h // k + 2 * radius, w // k + 2 * radius
        )
    else:
        flat = F.pad(noise.reshape(n * c, 1, h, w), (radius, radius, radius, radius), mode="replicate")
    taps = _gaussian_taps(sigma / k, radius, noise.dtype, str(noise.device))
    flat = F.conv2d(flat, taps.view(1, 1, 1, -1))
    flat = F.conv2d(flat, taps.view(1, 1, -1, 1)).reshape(n, c, h // k, w // k)
    if mix is not None:
        flat = torch.einsum("nij,njhw->nihw", mix.to(flat), flat)
    if (
        k > 1
    ):  # NCHW: a channels_last upsample of 2 channels is ~4× slower on a CPU than this plus a strided add
        flat = F.interpolate(flat, size=(h, w), mode="bilinear", align_corners=False)
    return flat


def elastic_noise(
    generator: torch.Generator, n: int, height: int, width: int, pin: bool = False
) -> torch.Tensor:
    """(N, 2, H, W) white noise of the elastic displacement fields, drawn on the CPU (identical on every
    device); ``pin``: straight into pinned memory, so it travels to a GPU without a staging copy."""
    return torch.randn(n, 2, height, width, generator=generator, pin_memory=pin)


def separable_affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, [N, ·, H, W], align_corners=False)`` as one broadcast add of a per-row and a
    per-column term (~2.5× faster on a CPU at 256²; as fast at 28²); theta (N, 2, 3) on the grid's device."""
    xs = (torch.arange(width, device=theta.device, dtype=theta.dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=theta.device, dtype=theta.dtype) * 2 + 1) / height - 1
    columns = theta[:, None, :, 0] * xs[None, :, None]  # N×W×2
    rows = theta[:, None, :, 1] * ys[None, :, None] + theta[:, None, :, 2]  # N×H×2
    return rows[:, :, None, :] + columns[:, None, :, :]


def contrast_about_grey(
    images: torch.Tensor, contrast: torch.Tensor, clip_input: bool = False, channels_last: bool = False
) -> torch.Tensor:
    """Contrast factors about each image's mean grey on [0, 1] N×C×H×W, clipped to [0, 1]: one reduction pass
    and one multiply-add pass that writes the result (channels_last with ``channels_last``), plus an in-place
    clip. ``clip_input``: first clip ``images`` into [0, 1] in place (as after a brightness gain; overwrites
    them)."""
    n, c = images.shape[:2]
    if clip_input:
        images = images.clamp_(0.0, 1.0)
    means = images.mean(dim=(2, 3))  # N×C; the grey mean is linear in them
    grey = means @ _on_device(_GRAY, str(means.device), means.dtype) if c == 3 else means.mean(dim=1)
    factor = contrast.to(device=images.device, dtype=images.dtype, non_blocking=True)
    shift = (grey * (1.0 - factor)).view(n, 1, 1, 1)
    out = torch.empty_like(
        images, memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )
    torch.addcmul(shift, images, factor.view(n, 1, 1, 1), out=out)
    return out.clamp_(0.0, 1.0)
