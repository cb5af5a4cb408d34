"""anyaccel-musa: Moore Threads MUSA kernels for the anyaccel op contracts, through torch_musa and MATE.

Provider `musa` (the prefix of every kernel name): MATE's FlashAttention-3-compatible paged attention
(`flash_attn_varlen_func` for prefill, `flash_attn_with_kvcache` for decode, scheduler metadata prepared once
per forward in the plan phase), MATE's DeepGEMM-style `fp8_gemm_nt` for 128-block fp8 GEMMs and its
contiguous grouped fp8 GEMM for block-quantized MoE experts, all on MP31 (S5000) only; torch_musa's fused
RMSNorm, rope and gated SiLU. Every gate is data (gates.py) with its source, and becomes a `supports`
reason; elsewhere Triton on MUSA or the reference binds, and `anyaccel explain` says why.

Registering imports nothing but anyaccel and torch: kernel records are data (kernels/__init__.py), their
targets are imported only when selected, and the emulators (emulators/) only on an emulated musa platform.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_available() -> str | None:
    """Active when musa is the platform asked for (ANYACCEL_PLATFORM, --simulate, --emulate) or torch_musa is
    installed; otherwise inactive with the reason. Imports nothing of torch_musa."""
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
