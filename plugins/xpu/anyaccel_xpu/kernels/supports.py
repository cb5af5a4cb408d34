"""Bind-time predicates: None when the stack can serve the spec, else the reason (from gates.py).

Dtypes, layouts and block sizes the records can declare are declared there (dtypes, kv_layout,
kv_block_sizes); these predicates add what a record cannot say.
"""

from __future__ import annotations

import math
from typing import Any

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.base import Platform

from .. import gates, stack

Reason = str | None


def _first(*checks) -> Reason:
    for check in checks:
        reason = check()
        if reason:
            return reason
    return None


# --- vllm-xpu-kernels attention -----------------------------------------------------------------------------


def prebuilt(spec: Any, platform: Platform) -> Reason:
    """The arch passes vllm-xpu-kernels' Xe2/Xe3 gate (the record's capability) but its wheels may hold no
    device code for it."""
    if platform.capability not in gates.PREBUILT:
        return (
            f"{platform.capability.name}: vllm-xpu-kernels' Xe2/Xe3 kernels accept it but its wheels are "
            "built for pvc and bmg only (CMakeLists AOT devices; vLLM #37828)"
        )
    return None


def _flash_attention(spec: AttentionSpec, platform: Platform) -> Reason:
    d = spec.head_dim
    return _first(
        lambda: prebuilt(spec, platform),
        lambda: (
            "soft-cap: vllm-xpu-kernels' flash attention does not apply one (vLLM's wrapper passes none "
            "and the kernels take none)"
            if spec.softcap > 0
            else None
        ),
        lambda: (
            f"head dim {d}: the flash attention takes at most {gates.FA_MAX_HEAD_DIM}"
            if d > gates.FA_MAX_HEAD_DIM
            else None
        ),
        lambda: (
            f"head dim {d}: rows must be 16-byte aligned for Xe2 2D block loads"
            if d * spec.dtype.itemsize % gates.FA_ROW_BYTES
            else None
        ),
        lambda: (
            f"block size {spec.block_size}: pages of 16, 32 or a multiple of 64 tokens"
            if spec.block_size not in gates.FA_SMALL_BLOCKS and spec.block_size % gates.FA_BLOCK_MULTIPLE
            else None
        ),
        lambda: (
            f"fp8 cache {spec.cache_dtype}: the flash attention reads float8_e4m3fn or float8_e5m2"
            if spec.fp8_kv and spec.cache_dtype not in gates.FA_KV_FP8
            else None
        ),
        lambda: (
            f"{spec.num_q_heads} query heads over {spec.num_kv_heads}: GQA ratio above 8 at head dim > 512"
            if d > gates.FA_MAX_HEAD_DIM and spec.num_q_heads // spec.num_kv_heads > 8
            else None
        ),
    )


def flash_attention(spec: AttentionSpec, platform: Platform) -> Reason:
    return _flash_attention(spec, platform)


def reshape_and_cache_flash(spec: AttentionSpec, platform: Platform) -> Reason:
    return _first(
        lambda: prebuilt(spec, platform),
        lambda: (
            f"fp8 cache {spec.cache_dtype}: writes float8_e4m3fn or float8_e5m2"
            if spec.fp8_kv and spec.cache_dtype not in gates.FA_KV_FP8
            else None
        ),
    )


# --- IPEX ---------------------------------------------------------------------------------------------------


def ipex(spec: Any, platform: Platform) -> Reason:
    return stack.ipex_unusable()


def ipex_attention(spec: AttentionSpec, platform: Platform) -> Reason:
    return _first(
        lambda: stack.ipex_unusable(),
        lambda: "sinks: not taken from IPEX's XPU paged attention here" if spec.sinks else None,
        lambda: "fp8 caches: IPEX's path here reads 16-bit and float32 caches only" if spec.fp8_kv else None,
    )


def ipex_write_kv(spec: AttentionSpec, platform: Platform) -> Reason:
    return _first(
        lambda: stack.ipex_unusable(),
        lambda: "fp8 caches: IPEX's path here writes 16-bit and float32 caches only" if spec.fp8_kv else None,
    )


# --- torch SDPA ---------------------------------------------------------------------------------------------


def sdpa_prefill(spec: AttentionSpec, platform: Platform) -> Reason:
    if spec.softcap > 0 or spec.sinks:
        return "soft-cap and sinks: torch's scaled_dot_product_attention has neither"
    if spec.fp8_kv:
        return "fp8 caches: the torch prefill reads 16-bit and float32 caches"
    return None


# --- elementwise --------------------------------------------------------------------------------------------


def rope(spec: Any, platform: Platform) -> Reason:
    return prebuilt(spec, platform)


# --- MoE ----------------------------------------------------------------------------------------------------


def topk_softmax(spec: Any, platform: Platform) -> Reason:
    if spec.scoring != "softmax" or spec.grouped:
        return "topk_softmax: softmax scoring over all experts (no groups)"
    return prebuilt(spec, platform)


def topk_sigmoid(spec: Any, platform: Platform) -> Reason:
    if spec.scoring != "sigmoid" or spec.grouped:
        return "topk_sigmoid: sigmoid scoring over all experts (no groups)"
    return prebuilt(spec, platform)


def grouped_topk(spec: Any, platform: Platform) -> Reason:
    if not spec.grouped:
        return "grouped_topk: grouped routing only"
    if not spec.has_bias:
        return (
            "grouped_topk without a correction bias: the kernel scores a group by its two best experts "
            "(DeepSeek-V3); without a bias the contract scores it by its best one"
        )
    return prebuilt(spec, platform)


def experts(spec: Any, platform: Platform) -> Reason:
    return _first(
        lambda: None if spec.quant == "none" else f"quant {spec.quant}: the experts here take 16-bit weights",
        lambda: (
            None
            if spec.activation in gates.MOE_ACTIVATIONS
            else f"activation {spec.activation}: XpuFusedMoe gates with silu or gelu here"
        ),
        lambda: prebuilt(spec, platform),
    )


# --- GEMMs --------------------------------------------------------------------------------------------------


def fp8_gemm(spec: Any, platform: Platform) -> Reason:
    return _first(
        lambda: (
            None
            if spec.fp8_dtype in gates.FP8_DTYPES
            else f"fp8 {spec.fp8_dtype}: oneDNN's fp8_gemm takes float8_e4m3fn or float8_e5m2"
        ),
        lambda: (
            None
            if spec.out_dtype in gates.FP8_OUT
            else f"out_dtype {spec.out_dtype}: float32, float16 or bfloat16"
        ),
        lambda: (
            f"K {spec.k}: block-scaled weights need K a multiple of 128 (vLLM's XPU block-fp8 path)"
            if spec.scales == "block" and spec.k % gates.FP8_BLOCK
            else None
        ),
        lambda: (
            f"N {spec.n}: a ragged last block needs gcd(N, 128) a multiple of 16 (oneDNN's group width)"
            if spec.scales == "block" and _group_n(spec.n) % gates.FP8_MIN_GROUP_N
            else None
        ),
        lambda: prebuilt(spec, platform),
    )


def _group_n(n: int) -> int:
    return math.gcd(n, gates.FP8_BLOCK)


def w4a16(spec: Any, platform: Platform) -> Reason:
    return _first(
        lambda: (
            None
            if spec.format == "gptq"
            else f"format {spec.format}: int4_gemm_w4a16 reads GPTQ's [K/8, N] packing"
        ),
        lambda: (
            "GPTQ qzeros: served symmetric (zero point 8, uint4b8); packed v1 zero points are not mapped to "
            "oneDNN's zero-point tensor"
            if spec.has_zeros
            else None
        ),
        lambda: (
            f"group size {spec.group_size}, K {spec.k}, N {spec.n}: each must be a multiple of 32"
            if spec.group_size % gates.W4_ALIGN or spec.k % gates.W4_ALIGN or spec.n % gates.W4_ALIGN
            else None
        ),
        lambda: prebuilt(spec, platform),
    )


def int8_gemm_unserved(spec: Any, platform: Platform) -> Reason:
    return (
        "no vendor int8 GEMM on Intel GPUs: vLLM's XPU path has no W8A8 int8 kernel and vllm-xpu-kernels "
        "exports none (sgl-kernel-xpu's int8_scaled_mm is not used here); Triton or the reference serves"
    )
