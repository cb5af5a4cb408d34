"""Kernel records of the CPU provider: data only, targets in the modules beside this one.

They run on the `cpu` platform and rank above the torch reference, which stays behind them for every spec
they decline (each says why in `anyaccel explain`).
"""

from __future__ import annotations

import torch

from anyaccel.registry import Kernel

from .supports import (
    attention_supports,
    native_attention_supports,
    native_experts_supports,
    native_mx_experts_supports,
    native_q8_supports,
    native_supports,
    native_topk_supports,
    native_w4_supports,
    onednn_supports,
)

PRIORITY = 50
FLOATS = frozenset({torch.float32, torch.float16, torch.bfloat16})


def _kernel(op: str, name: str, target: str, *, dtypes=FLOATS, priority=PRIORITY, **kwargs) -> Kernel:
    return Kernel(
        op=op,
        name=f"cpu.{name}",
        target=f"{__name__}.{target}",
        platforms=frozenset({"cpu"}),
        dtypes=dtypes,
        priority=priority,
        verified="cpu",
        **kwargs,
    )


F32 = frozenset({torch.float32})
NATIVE = PRIORITY + 10  # the C kernels rank above the torch-composed ones they replace for float32
STREAMED = "anyaccel_cpu.hugepages:prepare"  # weights a C kernel streams every call: in huge pages

KERNELS: list[Kernel] = [
    # both read and write the NHD cache: slots are rows of its flat [blocks * block_size, Hkv, D] view
    _kernel(
        "attention.decode",
        "native_decode",
        "attention:native_decode",
        dtypes=F32,
        supports=native_attention_supports,
        factory=True,
        kv_layout="NHD",
        priority=NATIVE,
        capturable=True,
    ),
    _kernel(
        "attention.decode",
        "sdpa_decode",
        "attention:decode",
        supports=attention_supports,
        factory=True,
        kv_layout="NHD",
    ),
    _kernel(
        "attention.write_kv",
        "native_write_kv",
        "attention:native_write_kv",
        dtypes=F32,
        supports=native_attention_supports,
        factory=True,
        kv_layout="NHD",
        priority=NATIVE,
        capturable=True,
    ),
    _kernel("attention.write_kv", "write_kv", "attention:write_kv", factory=True, kv_layout="NHD"),
    _kernel(
        "attention.prefill",
        "sdpa_prefill",
        "prefill:prefill",
        supports=attention_supports,
        factory=True,
        kv_layout="NHD",
    ),
    _kernel(
        "linear.gemm",
        "native_gemm",
        "linear:native_gemm",
        dtypes=F32,
        supports=native_supports,
        priority=NATIVE,
        capturable=True,
        prepare=STREAMED,
    ),
    _kernel(
        "linear.gemm",
        "onednn_gemm",
        "linear:gemm",
        dtypes=F32,
        supports=onednn_supports,
        prepare=f"{__name__}.linear:prepare",
    ),
    _kernel(
        "quant.w4a16_gemm",
        "native_w4a16_affine",
        "quant:native_w4a16_affine",
        dtypes=F32,
        supports=native_w4_supports,
        priority=NATIVE,
        capturable=True,
        prepare=STREAMED,
    ),
    _kernel(
        "quant.w8a16_gemm",
        "native_w8a16",
        "quant:native_w8a16",
        dtypes=F32,
        supports=native_supports,
        priority=NATIVE,
        capturable=True,
        prepare=STREAMED,
    ),
    _kernel(
        "quant.w4a8_gemm",
        "native_w4a8_affine",
        "quant:native_w4a8_affine",
        dtypes=F32,
        supports=native_q8_supports,
        priority=NATIVE,
        capturable=True,
        prepare=STREAMED,
    ),
    _kernel(
        "quant.w8a8_gemm",
        "native_w8a8",
        "quant:native_w8a8",
        dtypes=F32,
        supports=native_q8_supports,
        priority=NATIVE,
        capturable=True,
        prepare=STREAMED,
    ),
    _kernel(
        "moe.experts",
        "native_mx_experts",
        "mx_experts:experts",
        supports=native_mx_experts_supports,
        factory=True,
        prepare=f"{__name__}.mx_experts:prepare",
        priority=NATIVE,
    ),
    _kernel(
        "quant.mx_gemm",
        "native_mx_gemm",
        "mx:mx_gemm",
        supports=native_supports,
        factory=True,
        prepare=f"{__name__}.mx:prepare",
        priority=NATIVE,
    ),
    _kernel(
        "norm.rms_norm",
        "native_rms_norm",
        "norm:native_rms_norm",
        dtypes=F32,
        supports=native_supports,
        priority=NATIVE,
        capturable=True,
    ),
    _kernel("norm.rms_norm", "rms_norm", "norm:rms_norm", capturable=True),
    _kernel(
        "norm.add_rms_norm",
        "native_add_rms_norm",
        "norm:native_add_rms_norm",
        dtypes=F32,
        supports=native_supports,
        priority=NATIVE,
        capturable=True,
    ),
    _kernel("norm.add_rms_norm", "add_rms_norm", "norm:add_rms_norm", capturable=True),
    _kernel(
        "activation.silu_and_mul",
        "native_silu_and_mul",
        "activation:native_silu_and_mul",
        dtypes=F32,
        supports=native_supports,
        priority=NATIVE,
        capturable=True,
    ),
    _kernel(
        "rope.apply",
        "native_rope",
        "rope:native_apply",
        dtypes=F32,
        supports=native_supports,
        priority=NATIVE,
        capturable=True,
    ),
    _kernel(
        "moe.topk",
        "native_topk",
        "moe:topk",
        dtypes=FLOATS,
        supports=native_topk_supports,
        priority=NATIVE,
        capturable=True,
    ),
    _kernel(
        "moe.experts",
        "native_experts",
        "moe:experts",
        dtypes=F32,
        supports=native_experts_supports,
        factory=True,
        priority=NATIVE,
        capturable=True,
        prepare=STREAMED,
    ),
]
