"""anyaccel-wrongkernel: deliberately broken kernels for the cpu platform, ranked above every other kernel.
They exist so that tests can prove the kit and the dispatcher catch them; the plugin is active only when
ANYACCEL_TEST_WRONG=1 so that it never replaces a good kernel by accident.

    wrongkernel.rms_norm    norm.rms_norm with wrong numbers: `anyaccel check` must fail it
    wrongkernel.gelu_typo   activation.gelu_and_mul whose target has a typo: binding falls back to the next
                            kernel, with the import error as the reason
    wrongkernel.gelu_tanh   activation.gelu_and_mul whose default `approximate` drifted from the contract's:
                            rejected at bind time for its signature
"""

from __future__ import annotations

import os

import torch

from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"
ANYACCEL_PROVIDERS = ("wrongkernel",)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Wrong on purpose: divides by the mean absolute value instead of the root mean square."""
    xf = x.float()
    return (xf / (xf.abs().mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


def gelu_tanh(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    """Wrong on purpose: the contract's default is "none"; a caller relying on it would get tanh."""
    gate, up = x.float().chunk(2, dim=-1)
    return (torch.nn.functional.gelu(gate, approximate=approximate) * up).to(x.dtype)


@hookimpl
def anyaccel_available() -> str | None:
    if os.environ.get("ANYACCEL_TEST_WRONG") != "1":
        return "set ANYACCEL_TEST_WRONG=1 to activate this deliberately wrong kernel"
    return None


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    cpu, gelu = frozenset({"cpu"}), "activation.gelu_and_mul"
    return [
        Kernel("norm.rms_norm", "wrongkernel.rms_norm", f"{__name__}:rms_norm", cpu, priority=100),
        Kernel(gelu, "wrongkernel.gelu_typo", f"{__name__}:gelu_and_mull", cpu, priority=101),
        Kernel(gelu, "wrongkernel.gelu_tanh", f"{__name__}:gelu_tanh", cpu, priority=100),
    ]
