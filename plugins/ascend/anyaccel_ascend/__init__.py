"""anyaccel-ascend: Huawei Ascend kernels for the anyaccel op contracts, through torch_npu.

Provider `npu` (the prefix of every kernel name): paged attention through npu_fused_infer_attention_score
(TND, 128-token pages, host length lists prepared once per forward) and its _v2 variant for sinks, the
ATB paged attention on the 310P (NZ caches, a layout this plugin registers), KV writes, RMSNorm, rope,
SwiGLU, MoE routing and grouped-matmul experts, W8A8 dynamic and weight-only int8/int4 GEMMs. torch_npu's
gates are data (gates.py) and become `supports` reasons; `anyaccel explain` shows what runs where.

Registering imports nothing but anyaccel and torch: kernel records are data (kernels/__init__.py), their
targets are imported only when selected, and the torch_npu emulator (emulators/) only on an emulated npu
platform. The kernels call `torch_npu.<function>` attributes so that the emulator can stand in for torch_npu.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
from anyaccel.ops.kv_cache import KVLayout
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_available() -> str | None:
    """Active when npu is the platform asked for (ANYACCEL_PLATFORM, --simulate, --emulate) or torch_npu is
    installed; otherwise inactive with the reason. Imports nothing of torch_npu."""
    from .availability import unavailable_reason

    return unavailable_reason()


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    from .kernels import KERNELS

    return list(KERNELS)


@hookimpl
def anyaccel_kv_layouts() -> list[KVLayout]:
    from .layouts import NZ

    return [NZ]


@hookimpl
def anyaccel_emulators() -> list[Emulator]:
    from .emulators import EMULATORS

    return list(EMULATORS)
