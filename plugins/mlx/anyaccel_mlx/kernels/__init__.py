"""Kernel records of the MLX provider: data only (no MLX import), targets in the modules beside this one.

Every kernel runs on the `mps` platform (Apple silicon with Metal through MLX). Off that platform they can
still execute on MLX's CPU build wherever MLX imports, which is how `anyaccel check --provider mlx` runs them
on Linux; they are never selected for real work there.
"""

from __future__ import annotations

import torch

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import NHD_VIEWABLE
from anyaccel.ops.moe import MX_QUANT, MoESpec, unserved_features
from anyaccel.ops.quant import W8A16Spec
from anyaccel.platforms.base import Platform
from anyaccel.registry import Kernel

from ..available import mlx_missing

PRIORITY = 100  # above every portable kernel; MLX is the native stack on Apple silicon
FLOATS = frozenset({torch.float32, torch.float16, torch.bfloat16})


def attention_supports(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.softcap > 0:
        return "mx.fast.scaled_dot_product_attention has no logit soft-capping"
    if spec.kv_layout not in NHD_VIEWABLE:
        return f"reads the built-in KV layouts {', '.join(NHD_VIEWABLE)}, not {spec.kv_layout}"
    if spec.fp8_kv and spec.cache_dtype != torch.float8_e4m3fn:
        return f"mx.from_fp8 decodes e4m3fn only, not {str(spec.cache_dtype).removeprefix('torch.')}"
    return None


def experts_supports(spec: MoESpec, platform: Platform) -> str | None:
    if spec.quant in MX_QUANT:
        return f"quant={spec.quant}: block-scaled experts are not wired to mx.gather_qmm here yet"
    if spec.quant not in ("none", "int4_group"):
        return f"MLX has no fp8 matmul for quant={spec.quant} (its mxfp8 mode uses per-32 e8m0 scales)"
    return unserved_features(spec)


INT8_GROUPS = (32, 64, 128)  # the group sizes mx.quantized_matmul takes


def w8a16_supports(spec: W8A16Spec, platform: Platform) -> str | None:
    if spec.group_size not in INT8_GROUPS:
        return f"mx.quantized_matmul takes groups of {INT8_GROUPS}, not {spec.group_size}"
    return None


def _kernel(op: str, name: str, target: str, *, factory: bool = False, supports=None) -> Kernel:
    return Kernel(
        op=op,
        name=f"mlx.{name}",
        target=f"{__name__}.{target}",
        platforms=frozenset({"mps"}),
        requires=("mlx",),
        dtypes=FLOATS,
        supports=supports,
        priority=PRIORITY,
        factory=factory,
        off_platform=mlx_missing,
        verified="cpu",
    )


KERNELS: list[Kernel] = [
    _kernel("attention.prefill", "prefill", "attention:prefill", factory=True, supports=attention_supports),
    _kernel("attention.decode", "decode", "attention:decode", factory=True, supports=attention_supports),
    _kernel(
        "attention.write_kv", "write_kv", "attention:write_kv", factory=True, supports=attention_supports
    ),
    _kernel("norm.rms_norm", "rms_norm", "norm:rms_norm"),
    _kernel("norm.add_rms_norm", "add_rms_norm", "norm:add_rms_norm"),
    _kernel("rope.apply", "rope", "rope:apply"),
    _kernel("activation.silu_and_mul", "silu_and_mul", "activation:silu_and_mul"),
    _kernel("activation.gelu_and_mul", "gelu_and_mul", "activation:gelu_and_mul"),
    _kernel("moe.experts", "experts", "moe:experts", supports=experts_supports),
    _kernel("quant.w4a16_gemm", "w4a16_gemm", "quant:w4a16_gemm", factory=True),
    _kernel("quant.w8a16_gemm", "w8a16_gemm", "quant:w8a16_gemm", factory=True, supports=w8a16_supports),
    _kernel("quant.mx_gemm", "mx_gemm", "mx:mx_gemm", factory=True),
    _kernel("quant.quantize_mx", "quantize_mx", "mx:quantize_mx", factory=True),
]
