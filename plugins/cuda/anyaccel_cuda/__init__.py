"""anyaccel-cuda: NVIDIA kernels for the anyaccel op contracts.

Providers (the prefix of each kernel name):
    flashinfer  FlashInfer (distribution flashinfer-python): trtllm-gen attention, the FA2/FA3 paged
                prefill/decode wrappers (planned once per forward), KV append, norms, rope, activations,
                DeepSeek routing, CUTLASS fused MoE, groupwise fp8 GEMM
    fa4         FlashAttention-4, `flash_attn.cute` (distribution flash-attn-4)
    deepgemm    DeepGEMM (distribution deep-gemm): block-scaled fp8 GEMM
    torchcuda   torch's own CUDA kernels: varlen attention, indexed KV writes, _scaled_mm, _grouped_mm,
                _int_mm (through anyaccel_cuda.torch_ops)

Registering imports nothing but anyaccel and torch: kernel records are data (kernels/), their targets are
imported only when selected, and the emulators (emulators/) only on an emulated cuda platform.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_available() -> str | None:
    """Active when cuda is the platform asked for (ANYACCEL_PLATFORM, --simulate, --emulate) or when torch
    is a CUDA build; otherwise inactive with the reason. Reads no device: torch.version is plain data."""
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
