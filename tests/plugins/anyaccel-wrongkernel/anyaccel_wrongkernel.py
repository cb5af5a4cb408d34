"""anyaccel-wrongkernel: a deliberately wrong norm.rms_norm kernel for the cpu platform, ranked above the
torch reference. It exists so that tests can prove `anyaccel check` catches a wrong kernel; it is active only
when ANYACCEL_TEST_WRONG=1 so that it never replaces the reference by accident."""

from __future__ import annotations

import os

import torch

from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Wrong on purpose: divides by the mean absolute value instead of the root mean square."""
    xf = x.float()
    return (xf / (xf.abs().mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


@hookimpl
def anyaccel_available() -> str | None:
    if os.environ.get("ANYACCEL_TEST_WRONG") != "1":
        return "set ANYACCEL_TEST_WRONG=1 to activate this deliberately wrong kernel"
    return None


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return [
        Kernel(
            "norm.rms_norm", "wrongkernel.rms_norm", f"{__name__}:rms_norm", frozenset({"cpu"}), priority=100
        )
    ]
