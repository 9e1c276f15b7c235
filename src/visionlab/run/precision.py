"""Choose the fastest safe precision for the hardware at hand."""

from __future__ import annotations

from pathlib import Path

import torch


def cpu_supports_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX, and on ARM CPUs that advertise bf16."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16", "bf16"))


def resolve_precision(precision: str | int, accelerator: str) -> str:
    """``auto`` → bf16-mixed / 16-mixed on CUDA, bf16-mixed on a bf16-capable CPU, else 32-true."""
    if str(precision) != "auto":
        return str(precision)
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("auto", "cpu") and cpu_supports_bf16():
        return "bf16-mixed"
    return "32-true"
