"""anyaccel-xpu: Intel GPU kernels for the anyaccel op contracts.

Provider `xpu` (the prefix of every kernel name), three stacks ranked in this order:
  vllm-xpu-kernels  paged flash attention (prefill and decode over the NHD cache), KV writes, RMSNorm, rope,
                    gated activations, MoE routing and experts, oneDNN fp8 and W4A16 GEMMs;
  IPEX              its paged flash attention and KV writes, only where IPEX imports against the installed
                    torch (its last release needs torch 2.8; stack.py reads that without importing it);
  torch             SDPA on the paged cache as the prefill that needs no vendor package.
Behind them Triton (on XPU) and the torch reference. Gates are data (gates.py) with their sources and become
`supports` reasons; `anyaccel explain` shows what runs where.

Registering imports nothing but anyaccel and torch: kernel records are data (kernels/__init__.py), their
targets are imported only when selected, and the emulators (emulators/) only on an emulated xpu platform.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_available() -> str | None:
    """Active when xpu is the platform asked for (ANYACCEL_PLATFORM, --simulate, --emulate) or an Intel
    vendor stack is installed; otherwise inactive with the reason. Imports no vendor module, reads no
    device."""
    from .availability import unavailable_reason

    return unavailable_reason()


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    from .kernels import KERNELS

    return list(KERNELS)


@hookimpl
def anyaccel_emulators() -> list[Emulator]:
    from .emulators import EMULATORS

    return list(EMULATORS)
