"""Kernel records of the xpu provider: data only. Targets live in the modules beside this one and import
their stack (or, emulated, its stand-in) only when selected.

Three stacks, ranked: vllm-xpu-kernels (VXK), IPEX where it imports against the installed torch, torch's
own SDPA. Each record names the architectures its stack serves (gates.py, with sources) and a `supports`
predicate with the rest of its limits. All are verified against the plugin's emulators only
(`verified="emulator"`): that proves the glue, not the vendor kernels.
"""

from __future__ import annotations

import torch

from anyaccel.registry import Kernel

from .. import gates
from . import supports

HALF = frozenset({torch.float16, torch.bfloat16})
FLOATS = HALF | {torch.float32}
VXK, IPEX, TORCH = 30, 20, 10  # priorities: the successor library, then the archived one, then torch
HERE = __name__
VXK_DIST = ("vllm-xpu-kernels",)


def _kernel(op: str, name: str, target: str, *, priority: int, requires=VXK_DIST, **kwargs) -> Kernel:
    kwargs.setdefault("capability", gates.PREBUILT)
    return Kernel(
        op=op,
        name=f"xpu.{name}",
        target=f"{HERE}.{target}",
        platforms=frozenset({"xpu"}),
        requires=tuple(requires),
        priority=priority,
        verified="emulator",
        **kwargs,
    )


def _vxk(op: str, name: str, target: str, **kwargs) -> Kernel:
    return _kernel(op, name, target, priority=VXK, **kwargs)


def _ipex(op: str, name: str, target: str, **kwargs) -> Kernel:
    return _kernel(
        op,
        name,
        target,
        priority=IPEX,
        requires=(gates.IPEX_DISTRIBUTION,),
        capability=gates.TORCH_XPU,
        kv_layout="NHD",
        factory=True,
        **kwargs,
    )


KERNELS: list[Kernel] = [
    # attention: vllm-xpu-kernels' flash attention over the NHD paged cache. Its capability is the Xe2/Xe3
    # gate, so that lnl is rejected by the prebuilt-target reason rather than silently left out.
    _vxk(
        "attention.prefill",
        "flash_attn_prefill",
        "attention:prefill",
        capability=gates.XE2_XE3,
        dtypes=gates.FA_DTYPES,
        supports=supports.flash_attention,
        factory=True,
        kv_layout="NHD",
    ),
    _vxk(
        "attention.decode",
        "flash_attn_decode",
        "attention:decode",
        capability=gates.XE2_XE3,
        dtypes=gates.FA_DTYPES,
        supports=supports.flash_attention,
        factory=True,
        kv_layout="NHD",
    ),
    _vxk(
        "attention.write_kv",
        "reshape_and_cache_flash",
        "attention:write_kv",
        capability=gates.XE2_XE3,
        dtypes=FLOATS,
        supports=supports.reshape_and_cache_flash,
        factory=True,
        kv_layout="NHD",
    ),
    # attention through IPEX, only where it imports against this torch
    _ipex(
        "attention.prefill",
        "ipex_flash_attn_prefill",
        "ipex_attention:prefill",
        dtypes=gates.IPEX_DTYPES,
        supports=supports.ipex_attention,
    ),
    _ipex(
        "attention.decode",
        "ipex_flash_attn_decode",
        "ipex_attention:decode",
        dtypes=gates.IPEX_DTYPES,
        supports=supports.ipex_attention,
    ),
    _ipex(
        "attention.write_kv",
        "ipex_reshape_and_cache_flash",
        "ipex_attention:write_kv",
        dtypes=gates.IPEX_DTYPES,
        supports=supports.ipex_write_kv,
    ),
    # the prefill that needs no vendor package: torch's SDPA over the paged cache
    _kernel(
        "attention.prefill",
        "sdpa_prefill",
        "sdpa:prefill",
        priority=TORCH,
        requires=(),
        capability=gates.TORCH_XPU,
        dtypes=FLOATS,
        supports=supports.sdpa_prefill,
        factory=True,
        kv_layout="NHD",
    ),
    # norms, rope, activations
    _vxk("norm.rms_norm", "rms_norm", "elementwise:rms_norm", dtypes=FLOATS),
    _vxk("norm.add_rms_norm", "fused_add_rms_norm", "elementwise:add_rms_norm", dtypes=FLOATS),
    _vxk(
        "rope.apply",
        "rotary_embedding",
        "elementwise:rope",
        dtypes=FLOATS,
        supports=supports.rope,
        factory=True,
    ),
    _vxk("activation.silu_and_mul", "silu_and_mul", "elementwise:silu_and_mul", dtypes=FLOATS),
    _vxk("activation.gelu_and_mul", "gelu_and_mul", "elementwise:gelu_and_mul", dtypes=FLOATS),
    # MoE routing and experts (weights prepared once into XpuFusedMoe's [E, K, N])
    _vxk("moe.topk", "topk_softmax", "moe:topk_softmax", dtypes=FLOATS, supports=supports.topk_softmax),
    _vxk("moe.topk", "topk_sigmoid", "moe:topk_sigmoid", dtypes=FLOATS, supports=supports.topk_sigmoid),
    _vxk("moe.topk", "grouped_topk", "moe:grouped_topk", dtypes=FLOATS, supports=supports.grouped_topk),
    _vxk(
        "moe.experts",
        "fused_moe",
        "moe:experts",
        capability=gates.XE2_XE3,
        dtypes=gates.MOE_DTYPES,
        supports=supports.experts,
        prepare=f"{HERE}.moe:prepare",
    ),
    # GEMMs through oneDNN
    _vxk(
        "quant.fp8_gemm",
        "fp8_gemm",
        "gemm:fp8_gemm",
        supports=supports.fp8_gemm,
        prepare=f"{HERE}.gemm:prepare_fp8",
    ),
    _vxk(
        "quant.w4a16_gemm",
        "int4_gemm_w4a16",
        "gemm:w4a16",
        dtypes=gates.W4_DTYPES,
        factory=True,
        supports=supports.w4a16,
        prepare=f"{HERE}.gemm:prepare_w4",
    ),
    # no vendor int8 GEMM: a record that always declines, so that the plan says why
    _vxk(
        "quant.int8_gemm",
        "int8_gemm_unserved",
        "gemm:int8_gemm_unserved",
        requires=(),
        capability=gates.TORCH_XPU,
        supports=supports.int8_gemm_unserved,
    ),
]
