"""anyaccel-rocm: AMD Instinct kernels for the anyaccel op contracts, through AITER (ROCm/aiter,
distribution amd-aiter).

Provider `aiter` (the prefix of every kernel name): varlen prefill, paged decode (HIP and assembly, the
latter on its own KV layouts, AITER_PA_ASM and AITER_PA_ASM_8BIT), KV writes, RMSNorm, rope, gated
activations, routing, fused MoE on pre-shuffled weights, fp8 GEMMs, the custom and the quick (FP level)
all-reduce. AITER's own gates are data (gates.py) and become `supports` reasons; what runs where is shown
by `anyaccel explain`.

Registering imports nothing but anyaccel and torch: kernel records are data (kernels/), their targets are
imported only when selected, and the AITER emulator (emulators/) only on an emulated rocm platform.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
from anyaccel.ops.kv_cache import KVLayout
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_available() -> str | None:
    """Active when rocm is the platform asked for (ANYACCEL_PLATFORM, --simulate, --emulate) or when torch
    is a ROCm build; otherwise inactive with the reason. Reads no device: torch.version is plain data."""
    from .availability import unavailable_reason

    return unavailable_reason()


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    from .kernels import KERNELS

    return list(KERNELS)


@hookimpl
def anyaccel_kv_layouts() -> list[KVLayout]:
    from .layouts import PA_ASM, PA_ASM_8BIT

    return [PA_ASM, PA_ASM_8BIT]


@hookimpl
def anyaccel_emulators() -> list[Emulator]:
    from .emulators import EMULATORS

    return list(EMULATORS)
