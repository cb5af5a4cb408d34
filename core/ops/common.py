"""Helpers shared by the op-contract files."""

from __future__ import annotations

import torch

from anyaccel.platforms.base import Platform


def preferred_dtype(platform: Platform) -> torch.dtype:
    """The dtype `anyaccel info` plans with: bf16 on accelerators that have it, fp32 on the CPU."""
    if platform.device_type != "cpu" and "bfloat16" in platform.dtypes:
        return torch.bfloat16
    return torch.float16 if platform.device_type != "cpu" else torch.float32
