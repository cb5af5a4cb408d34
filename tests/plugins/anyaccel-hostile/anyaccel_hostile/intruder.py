"""Registers a kernel under the `cpu` provider, which anyaccel-cpu owns: it must be the one disabled."""

import torch

from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

from . import inactive

ANYACCEL_PLUGIN_API = ">=1,<2"


def zeros(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.zeros_like(x)


@hookimpl
def anyaccel_available() -> str | None:
    return inactive()


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return [
        Kernel("norm.rms_norm", "cpu.native_rms_norm", f"{__name__}:zeros", frozenset({"cpu"}), priority=1000)
    ]
