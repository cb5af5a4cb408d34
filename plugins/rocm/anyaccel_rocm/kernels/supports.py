"""Bind-time predicates: None when the AITER call can serve the spec, else the reason (shown by
`anyaccel explain`). Each reads a table of ../gates.py; none imports AITER."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from anyaccel.ops.moe import unserved_features
from anyaccel.platforms.base import Platform

from .. import gates
from ..layouts import NAME as PA_ASM_LAYOUT
from ..layouts import NAME_8BIT as PA_ASM_8BIT_LAYOUT
from ..layouts import PACKS as PA_ASM_PACKS

Reason = str | None
HALF = (torch.float16, torch.bfloat16)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def platform_fp8(platform: Platform) -> torch.dtype | None:
    return getattr(torch, platform.fp8_dtype) if platform.fp8_dtype else None


def _first(*checks: Callable[[], Reason]) -> Reason:
    for check in checks:
        reason = check()
        if reason:
            return reason
    return None


# --- attention ------------------------------------------------------------------------------------------


def _kv_dtype(spec: Any, platform: Platform) -> Reason:
    """16-bit caches hold the compute dtype; fp8 caches must be AITER's fp8 for the gfx."""
    cache = spec.cache_dtype
    if cache == spec.dtype:
        return None
    if spec.fp8_kv:
        fp8 = platform_fp8(platform)
        if cache != fp8:
            return (
                f"fp8 KV cache {_name(cache)}: AITER on {platform.capability.name} computes fp8 as "
                f"{platform.fp8_dtype} (aiter/utility/dtypes.py)"
            )
        return None
    return f"KV cache dtype {_name(cache)} differs from the compute dtype {_name(spec.dtype)}"


def _pa_asm_cache(spec: Any, platform: Platform, layout: str) -> Reason:
    """AITER_PA_ASM holds 16-bit caches (x = 8), AITER_PA_ASM_8BIT fp8 caches in the gfx's fp8 (x = 16);
    both in whole x-element packs of head_dim and block_size."""
    x = PA_ASM_PACKS[layout]
    cache = _name(spec.cache_dtype)
    if layout == PA_ASM_8BIT_LAYOUT:
        if not spec.fp8_kv:
            return f"the {layout} layout holds fp8 caches (x = {x}); the cache is {cache}"
        reason = _kv_dtype(spec, platform)
        if reason:
            return reason
    elif spec.cache_dtype not in HALF:
        return f"the {layout} layout holds 16-bit caches (x = {x}); the cache is {cache}"
    if spec.head_dim % x or spec.block_size % x:
        return f"the {layout} layout needs head_dim and block_size multiples of {x}"
    return None


def prefill(spec: Any, platform: Platform) -> Reason:
    """flash_attn_varlen_func: CK serves fp16/bf16, head dims multiples of 8 up to 256, any GQA ratio,
    windows, soft-cap and sinks; the v3 assembly kernel takes the bf16 head-dim-128 cases without window or
    soft-cap, and its gate does not look at sink_ptr, so sinks there are declined."""
    gfx = platform.capability.name
    engine = gates.prefill_engine(gfx, spec.dtype, spec.head_dim, spec.sliding_window, spec.softcap)
    return _first(
        lambda: _kv_dtype(spec, platform),
        lambda: (
            None
            if spec.head_dim % 8 == 0 and spec.head_dim <= gates.CK_MAX_HEAD_DIM
            else f"head_dim {spec.head_dim}: AITER's CK attention takes multiples of 8 up to "
            f"{gates.CK_MAX_HEAD_DIM}"
        ),
        lambda: (
            None
            if spec.num_q_heads % spec.num_kv_heads == 0
            else "the number of KV heads must divide the number of query heads"
        ),
        lambda: (
            f"sinks on AITER's {engine} path: can_impl_fmha_v3_fwd (aiter/ops/mha.py) does not gate "
            "sink_ptr, so the sink term is not trusted there"
            if spec.sinks and engine == "asm v3"
            else None
        ),
    )


def prefill_pa_asm(spec: Any, platform: Platform, layout: str = PA_ASM_LAYOUT) -> Reason:
    return _pa_asm_cache(spec, platform, layout) or prefill(spec, platform)


prefill_pa_asm_8bit = partial(prefill_pa_asm, layout=PA_ASM_8BIT_LAYOUT)


def decode_v1(spec: Any, platform: Platform) -> Reason:
    """paged_attention_v1 (csrc/cpp_itfs/pa/pa_v1.py; op_tests/test_pa_v1.py)."""
    return _first(
        lambda: _kv_dtype(spec, platform),
        lambda: (
            None
            if spec.head_dim in gates.PA_V1_HEAD_DIMS
            else f"head_dim {spec.head_dim}: paged_attention_v1 is tested for {sorted(gates.PA_V1_HEAD_DIMS)}"
        ),
        lambda: (
            None
            if spec.block_size in gates.PA_V1_BLOCK_SIZES
            else f"block_size {spec.block_size}: paged_attention_v1 is tested for "
            f"{sorted(gates.PA_V1_BLOCK_SIZES)}"
        ),
        lambda: "sinks: paged_attention_v1 has no sink argument" if spec.sinks else None,
        lambda: (
            "sliding window: paged_attention_v1's sliding_window convention is undocumented; not claimed"
            if spec.sliding_window > 0
            else None
        ),
    )


def decode_pa_asm(spec: Any, platform: Platform, layout: str = PA_ASM_LAYOUT) -> Reason:
    """pa_fwd_asm (csrc/py_itfs_cu/asm_pa.cu, hsa/<gfx>/pa/pa_asm.csv): 16-bit caches, or fp8 caches with
    per-token scales (the layer's per-tensor scale, expanded) on their own 16-element packs."""
    gfx = platform.capability.name
    q_type = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(spec.dtype, _name(spec.dtype))
    kv_type = "fp8" if spec.fp8_kv else q_type
    gqa = spec.num_q_heads // max(spec.num_kv_heads, 1)
    return _first(
        lambda: (
            None
            if spec.head_dim == gates.PA_ASM_HEAD_DIM
            else f"head_dim {spec.head_dim}: pa_fwd_asm only supports head_size=128"
        ),
        lambda: (
            None
            if spec.block_size == gates.PA_ASM_BLOCK_SIZE
            else f"block_size {spec.block_size}: pa_fwd_asm's decode kernels read 16-token blocks"
        ),
        lambda: _pa_asm_cache(spec, platform, layout),
        lambda: (
            "sliding window, soft-cap or sinks: pa_fwd_asm has none"
            if spec.sliding_window > 0 or spec.softcap > 0 or spec.sinks
            else None
        ),
        lambda: (
            None
            if spec.num_q_heads % spec.num_kv_heads == 0
            and gates.pa_asm_kernel(gfx, q_type, kv_type, gqa) is not None
            else f"no pa_fwd_asm kernel for q {q_type}, kv {kv_type}, GQA ratio {gqa} on {gfx} "
            f"(hsa/{gfx}/pa/pa_asm.csv: GQA up to 8 or 16)"
        ),
    )


def write_kv(spec: Any, platform: Platform) -> Reason:
    return _kv_dtype(spec, platform)


decode_pa_asm_8bit = partial(decode_pa_asm, layout=PA_ASM_8BIT_LAYOUT)


def write_kv_pa_asm(spec: Any, platform: Platform, layout: str = PA_ASM_LAYOUT) -> Reason:
    return _pa_asm_cache(spec, platform, layout)


write_kv_pa_asm_8bit = partial(write_kv_pa_asm, layout=PA_ASM_8BIT_LAYOUT)


# --- norms, rope, activations -----------------------------------------------------------------------------


def rope(spec: Any, platform: Platform) -> Reason:
    if spec.rotary_dim % 2 or spec.rotary_dim > spec.head_dim:
        return f"rotary_dim {spec.rotary_dim}: an even number <= head_dim"
    return None


# --- MoE ------------------------------------------------------------------------------------------------


def topk_softmax(spec: Any, platform: Platform) -> Reason:
    if spec.scoring != "softmax" or spec.grouped or spec.has_bias:
        return "topk_softmax: ungrouped softmax routing without a correction bias"
    return None


def biased_grouped_topk(spec: Any, platform: Platform) -> Reason:
    if spec.scoring != "sigmoid" or not spec.has_bias:
        return "biased_grouped_topk: sigmoid scoring with a correction bias (DeepSeek-V3)"
    return None


def grouped_topk(spec: Any, platform: Platform) -> Reason:
    if not spec.grouped or spec.has_bias:
        return "grouped_topk: grouped routing without a correction bias (DeepSeek-V2)"
    return None


QUANT_TYPES = {"none": "No", "fp8_tensor": "per_Tensor", "fp8_block": "per_128x128"}


def experts(spec: Any, platform: Platform) -> Reason:
    """fused_moe with shuffle_weight(w, (16, 16)) weights: [2I, H] and [H, I] tiles of 16 rows by 32
    columns; fp8 in AITER's fp8 for the gfx; 128x128 blocks whole."""
    h, i = spec.hidden_size, spec.intermediate_size
    rows, cols = gates.SHUFFLE_ROWS, gates.SHUFFLE_COLS
    block = gates.MOE_BLOCK
    return _first(
        lambda: gates.MX_EXPERTS_DECLINED.get(spec.quant),
        lambda: (
            None
            if spec.quant in QUANT_TYPES
            else f"quant {spec.quant}: fused_moe is used for {', '.join(QUANT_TYPES)}"
        ),
        lambda: (
            None
            if spec.activation in ("silu", "gelu")
            else f"activation {spec.activation}: ActivationType Silu or Gelu"
        ),
        lambda: unserved_features(spec),
        lambda: (
            None
            if h % cols == 0 and i % cols == 0 and (2 * i) % rows == 0
            else f"hidden {h} / intermediate {i}: shuffle_weight (16, 16) needs multiples of {cols}"
        ),
        lambda: (
            "fp8 experts: this platform has no fp8"
            if spec.quant != "none" and platform_fp8(platform) is None
            else None
        ),
        lambda: (
            f"hidden {h} / intermediate {i}: per_128x128 quantizes whole {block}x{block} tiles"
            if spec.quant == "fp8_block" and (h % block or i % block)
            else None
        ),
    )


def quantize_fp8(spec: Any, platform: Platform) -> Reason:
    """AITER's quantizers write its fp8 for the gfx (aiter/ops/quant.py)."""
    if spec.fp8_dtype != platform.fp8_dtype:
        return f"fp8 {spec.fp8_dtype}: AITER on {platform.capability.name} quantizes to {platform.fp8_dtype}"
    return None


# --- fp8 GEMM ---------------------------------------------------------------------------------------------


def _gemm(spec: Any, platform: Platform, scales: str) -> Reason:
    fp8 = platform.fp8_dtype
    return _first(
        lambda: None if spec.scales == scales else f"{spec.scales} scales (this call takes {scales} scales)",
        lambda: (
            None
            if spec.out_dtype in gates.GEMM_OUT_DTYPES
            else f"out_dtype {_name(spec.out_dtype)}: gemm_a8w8 writes bf16 or fp16"
        ),
        lambda: (
            None
            if spec.fp8_dtype == fp8
            else f"fp8 {spec.fp8_dtype}: AITER on {platform.capability.name} computes fp8 as {fp8} "
            "(aiter/utility/dtypes.py; the fp8 scheme converts e4m3fn checkpoints at load)"
        ),
    )


def gemm_a8w8(spec: Any, platform: Platform) -> Reason:
    return _gemm(spec, platform, "channel")


def gemm_a8w8_blockscale(spec: Any, platform: Platform) -> Reason:
    return _gemm(spec, platform, "block")


# --- communication ----------------------------------------------------------------------------------------


def custom_all_reduce(spec: Any, platform: Platform) -> Reason:
    """CustomAllreduce's limits (aiter/dist/device_communicators/custom_all_reduce.py) and known bugs."""
    gfx = platform.capability.name
    return _first(
        lambda: (
            None
            if spec.world_size in gates.CUSTOM_AR_WORLD_SIZES
            else f"world size {spec.world_size}: AITER's custom all-reduce supports "
            f"{sorted(gates.CUSTOM_AR_WORLD_SIZES)}"
        ),
        lambda: (
            f"{gfx} with {spec.world_size} ranks: AITER's custom all-reduce gives wrong results there "
            "(ROCm/aiter#4855)"
            if (gfx, spec.world_size) in gates.CUSTOM_AR_BROKEN
            else None
        ),
        lambda: (
            None
            if spec.max_bytes is not None and spec.max_bytes <= gates.CUSTOM_AR_MAX_BYTES
            else f"messages up to {spec.max_bytes or 'any size'} bytes: the custom all-reduce takes at most "
            f"{gates.CUSTOM_AR_MAX_BYTES} (AITER_CUSTOM_AR_MAX_SIZE's default)"
        ),
    )


def quick_min_bytes(dtype: torch.dtype, world_size: int) -> int:
    """The smallest input QuickAllReduce takes at its FP level (_QR_MIN_SIZE; bf16 is not cast to fp16)."""
    key = torch.float16 if gates.QR_CAST_BF16_TO_FP16 and dtype == torch.bfloat16 else dtype
    return gates.QR_MIN_BYTES[(key, world_size)]


def quick_all_reduce(spec: Any, platform: Platform) -> Reason:
    """QuickAllReduce's limits (aiter/dist/device_communicators/quick_all_reduce.py) at the FP level: a
    size class is served when it reaches the minimum size; smaller inputs of it go to the next kernel."""
    gfx = platform.capability.name
    return _first(
        lambda: (
            None
            if gfx.startswith(gates.QR_GFX_PREFIXES)
            else f"{gfx}: AITER's quick all-reduce runs on {'*/'.join(gates.QR_GFX_PREFIXES)}* only"
        ),
        lambda: (
            None
            if spec.dtype in gates.QR_DTYPES
            else f"dtype {_name(spec.dtype)}: AITER's quick all-reduce sums float16 and bfloat16 only"
        ),
        lambda: (
            None
            if spec.world_size in gates.QR_WORLD_SIZES
            else f"world size {spec.world_size}: AITER's quick all-reduce supports "
            f"{sorted(gates.QR_WORLD_SIZES)}"
        ),
        lambda: (
            f"messages up to {spec.max_bytes} bytes: AITER's quick all-reduce takes {_name(spec.dtype)} on "
            f"{spec.world_size} ranks from {quick_min_bytes(spec.dtype, spec.world_size)} bytes "
            "(_QR_MIN_SIZE; the custom all-reduce or RCCL is faster below)"
            if spec.max_bytes is not None and spec.max_bytes < quick_min_bytes(spec.dtype, spec.world_size)
            else None
        ),
    )
