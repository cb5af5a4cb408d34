"""Bind-time predicates: None when torch_musa or MATE can serve the spec, else the reason (from gates.py).

Capability, dtype and layout are also declared on the records (capability, dtypes, kv_layout); these
predicates add what a record cannot say: head dims, fp8 KV, GEMM divisibility, rope form, MoE shapes.
"""

from __future__ import annotations

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.base import Platform

from .. import gates


def mate_attention(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.fp8_kv:
        return "fp8 KV caches: MATE's FlashAttention-3 path takes bf16/fp16 only (no fp8 attention)"
    if spec.head_dim > gates.ATTN_MAX_HEAD_DIM:
        return f"head dim {spec.head_dim}: MATE supports head dims up to {gates.ATTN_MAX_HEAD_DIM}"
    if spec.sinks and spec.dtype != gates.SINK_DTYPE:
        return (
            f"sinks with {spec.dtype} attention: MATE takes the learnable sink in bfloat16 only, whose "
            "rounding exceeds a float16 result's tolerance"
        )
    return None


def deepgemm_fp8(spec, platform: Platform) -> str | None:
    if spec.scales != "block":
        return f"scales {spec.scales}: MATE's fp8_gemm_nt takes 1x128 / 128x128 block scales"
    if spec.fp8_dtype != "float8_e4m3fn":
        return f"{spec.fp8_dtype}: MATE's fp8 GEMMs read e4m3 (float8_e4m3fn) or e5m2"
    if spec.out_dtype not in gates.FP8_GEMM_OUT:
        return f"output {spec.out_dtype}: MATE's fp8_gemm_nt writes bfloat16 or float16"
    n, k = gates.FP8_GEMM_N_MULTIPLE, gates.FP8_GEMM_K_MULTIPLE
    if spec.n % n or spec.k % k:
        return f"N={spec.n}, K={spec.k}: DeepGEMM-style fp8_gemm_nt needs N % {n} == 0 and K % {k} == 0"
    return None


def grouped_fp8_experts(spec, platform: Platform) -> str | None:
    if spec.quant != "fp8_block":
        return f"quant {spec.quant}: MATE's grouped GEMM serves 128x128 block fp8 experts only"
    if spec.activation not in ("silu", "gelu"):
        return f"activation {spec.activation!r}: computes silu, gelu only"
    if getattr(spec, "has_bias", False):
        return "no expert biases (w13_bias, w2_bias): MATE's grouped GEMM takes none"
    n, k = gates.GROUPED_N_MULTIPLE, gates.GROUPED_K_MULTIPLE
    h, i = spec.hidden_size, spec.intermediate_size
    if (2 * i) % n or h % n or h % k or i % k:
        return (
            f"H={h}, I={i}: vLLM-musa takes the grouped fp8 GEMM only with N % {n} == 0 and K % {k} == 0 "
            f"for both GEMMs (N = 2I then H, K = H then I)"
        )
    return None


def fused_rope(spec, platform: Platform) -> str | None:
    if not spec.is_neox:
        return "GPT-J (interleaved) rope: torch_musa's rope is verified in the rotate-half form only"
    if spec.rotary_dim % 2 or spec.rotary_dim > spec.head_dim:
        return f"rotary_dim {spec.rotary_dim} with head dim {spec.head_dim}"
    return None
