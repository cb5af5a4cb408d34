"""Bind-time predicates: None when a kernel serves the spec on this platform, else the reason it does not.

Each reason names the library rule it comes from (the emulators enforce the same rules at call time, so a
predicate that let through what the library rejects fails the conformance tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from anyaccel.ops.moe import unserved_features
from anyaccel.platforms.base import Platform

from .. import gates

Predicate = Callable[[Any, Platform], "str | None"]

FP8_E4M3FN = torch.float8_e4m3fn
# FlashInfer data/include/flashinfer/utils.cuh DISPATCH_HEAD_DIM (0.7.4)
FLASHINFER_HEAD_DIMS = (64, 128, 256, 512)
# trtllm-gen FMHA kernels: head dims 64/128/256 and 16/32/64-token pages, as vLLM's FlashInfer backend
# offers them (v1/attention/backends/flashinfer.py); FlashInfer's own listing is in its cubin metadata.
TRTLLM_HEAD_DIMS = (64, 128, 256)


def all_of(*checks: Predicate) -> Predicate:
    def check(spec: Any, platform: Platform) -> str | None:
        for c in checks:
            reason = c(spec, platform)
            if reason:
                return reason
        return None

    return check


# --- attention ---------------------------------------------------------------------------------------


def nvidia_fp8_kv(spec, platform) -> str | None:
    if spec.fp8_kv and spec.cache_dtype != FP8_E4M3FN:
        return f"fp8 KV cache {spec.cache_dtype} is AMD's e4m3fnuz; NVIDIA kernels read e4m3fn"
    return None


def flashinfer_paged(spec, platform) -> str | None:
    if spec.head_dim not in FLASHINFER_HEAD_DIMS:
        return f"head_dim {spec.head_dim}: FlashInfer's paged kernels are built for {FLASHINFER_HEAD_DIMS}"
    return nvidia_fp8_kv(spec, platform)


def trtllm(spec, platform) -> str | None:
    """fp8 e4m3fn caches are served (decode with the model's q, prefill with q quantized to e4m3; see
    attention/trtllm.py); e4m3fnuz is AMD's."""
    if reason := nvidia_fp8_kv(spec, platform):
        return reason
    if spec.head_dim not in TRTLLM_HEAD_DIMS:
        return f"head_dim {spec.head_dim}: trtllm-gen kernels exist for {TRTLLM_HEAD_DIMS}"
    if spec.softcap > 0:
        return "trtllm-gen attention has no soft-cap argument"
    if spec.fp8_kv and spec.head_dim not in gates.TRTLLM_FP8_KV_HEAD_DIMS:
        return (
            f"head_dim {spec.head_dim} with an fp8 KV cache: trtllm-gen's fp8 kernels are exercised for "
            f"{gates.TRTLLM_FP8_KV_HEAD_DIMS}"
        )
    if not spec.causal:
        return "trtllm-gen context attention is wired for causal prefill only"
    return None


def fa4_common(spec, platform) -> str | None:
    cap = platform.capability
    if spec.fp8_kv and cap not in gates.FA4_FP8:
        return f"fp8 KV cache: FA4's fp8 path runs on sm_10x only, not {cap}"
    if spec.fp8_kv:
        return (
            "fp8 KV cache: FA4 needs q in fp8 too, and flash_attn_varlen_func (4.0.0b36) takes no "
            "q/k/v descales, so a per-tensor q scale would reach it only as a host float (a device sync per "
            "call); trtllm-gen serves fp8 caches on sm_100/sm_103"
        )
    d = spec.head_dim
    if cap in gates.FA4_HEAD_DIM_128_OR_256 and not (d <= 128 or d == 256):
        return f"head_dim {d}: FA4 on sm_10x/sm_11x takes 8..128 or 256 (_validate_head_dims)"
    if d > 256 or d % 8:
        return f"head_dim {d}: FA4 takes multiples of 8 up to 256"
    return None


def fa4_prefill(spec, platform) -> str | None:
    if platform.capability in gates.FA4_NO_PAGED_KV and spec.prefix:
        return f"FA4 has no paged KV on {platform.capability} (sm_12x), so no cached prefix"
    return fa4_common(spec, platform)


def fa4_decode(spec, platform) -> str | None:
    if platform.capability in gates.FA4_NO_PAGED_KV:
        return f"FA4 has no paged KV on {platform.capability} (sm_12x): decode reads the paged cache"
    return fa4_common(spec, platform)


def torch_varlen(spec, platform) -> str | None:
    if spec.prefix:
        return (
            "torch's varlen attention runs here without a cached prefix (paged KV needs its sm_90-only FA3)"
        )
    if spec.softcap > 0 or spec.sinks:
        return "torch's varlen_attn has no soft-cap and no sinks"
    if spec.head_dim > 256 or spec.head_dim % 8:
        return f"head_dim {spec.head_dim}: FlashAttention-2 takes multiples of 8 up to 256"
    return None


def flashinfer_write_kv(spec, platform) -> str | None:
    return nvidia_fp8_kv(spec, platform)


# --- norms, rope, activations ------------------------------------------------------------------------


def rope_cache(spec, platform) -> str | None:
    if spec.rotary_dim % 2:
        return f"rotary_dim {spec.rotary_dim} must be even"
    return None


# --- MoE ---------------------------------------------------------------------------------------------


def ungrouped_split(num_experts: int, top_k: int) -> int | None:
    """The group count g that runs ungrouped routing through fused_topk_deepseek with every group kept
    (n_group = topk_group = g), or None. Its validator wants topk_group * n_group >= topk, E / g <= 32
    experts per group (at least 2: a group scores by its two best) and (E / g) * topk_group <= 128, i.e.
    E <= 128; topk == 1 runs as it is (n_group = topk_group = 1)."""
    if top_k == 1:
        return 1
    for g in range(2, 33):
        if num_experts % g == 0 and 2 <= num_experts // g <= 32 and g * g >= top_k and num_experts <= 128:
            return g
    return None


def deepseek_routing(spec, platform) -> str | None:
    if spec.scoring != "sigmoid" or not spec.has_bias:
        return "fused_topk_deepseek scores with sigmoid plus a correction bias (DeepSeek-V3 routing) only"
    if spec.top_k > 8:
        return f"top_k {spec.top_k}: fused_topk_deepseek selects at most 8"
    if not spec.grouped and ungrouped_split(spec.num_experts, spec.top_k) is None:
        return (
            f"{spec.num_experts} experts, top {spec.top_k}, ungrouped: fused_topk_deepseek's limits leave no "
            "grouping with every group kept (E <= 128 and topk_group * n_group >= top_k)"
        )
    if spec.grouped and spec.num_experts > 256:
        return f"{spec.num_experts} experts: grouped fused_topk_deepseek takes at most 32 groups of 32"
    return None


def unquantized_local_experts(spec, platform) -> str | None:
    if spec.quant != "none":
        return f"quant {spec.quant!r}: only unquantized experts are wired"
    if spec.expert_parallel:
        return "expert parallelism (expert_map) is not wired"
    return unserved_features(spec)


def cutlass_moe(spec, platform) -> str | None:
    """Unquantized experts, any expert placement (moe_flashinfer.expert_parallel_args maps it)."""
    if spec.quant != "none":
        return f"quant {spec.quant!r}: only unquantized experts are wired"
    return unserved_features(spec)


def trtllm_fp8_block_moe(spec, platform) -> str | None:
    if spec.quant != "fp8_block" or spec.group_size != 128:
        return f"quant {spec.quant!r}: trtllm-gen's routed MoE here takes fp8 block (128x128) weights only"
    if spec.expert_parallel and spec.expert_placement != "contiguous":
        return (
            f"expert placement {spec.expert_placement!r}: the kernel's local experts are one contiguous range"
        )
    if spec.activation != "silu":
        return f"activation {spec.activation!r}: the DeepSeek-FP8 recipe here is SwiGLU"
    if spec.has_bias:
        return "no expert biases: the DeepSeek-FP8 recipe has none"
    if spec.hidden_size % 128 or spec.intermediate_size % 128:
        return "hidden and intermediate sizes must be multiples of 128 (whole scale tiles)"
    return None


def grouped_mm_shapes(spec, platform) -> str | None:
    if spec.hidden_size % 8 or spec.intermediate_size % 8:
        return "torch._grouped_mm needs 16-byte rows: hidden and intermediate sizes multiples of 8"
    return unquantized_local_experts(spec, platform)


# --- GEMMs -------------------------------------------------------------------------------------------


def nvidia_fp8(spec, platform) -> str | None:
    if spec.fp8_dtype != "float8_e4m3fn":
        return f"fp8_dtype {spec.fp8_dtype} is AMD's; NVIDIA's fp8 GEMMs take float8_e4m3fn"
    return None


def scaled_mm(spec, platform) -> str | None:
    if spec.n % 16 or spec.k % 16:
        return f"torch._scaled_mm needs N and K multiples of 16 (got N={spec.n}, K={spec.k})"
    if spec.scales == "channel" and spec.out_dtype != torch.bfloat16:
        return "torch._scaled_mm's row-wise scaling writes bf16 only"
    if spec.scales == "block":
        if platform.capability not in gates.TORCH_SCALED_MM_BLOCK:
            return (
                f"torch._scaled_mm's 1x128/128x128 block scales run on sm_90 only, not {platform.capability}"
            )
        if spec.out_dtype != torch.bfloat16:
            return "torch._scaled_mm's block scaling writes bf16 only"
        if spec.n % 128 or spec.k % 128:
            return "block scales need N and K multiples of 128"
    return nvidia_fp8(spec, platform)


def block_scales(spec, platform) -> str | None:
    if spec.scales != "block":
        return f"scales {spec.scales!r}: this kernel takes 1x128 / 128x128 block scales only"
    if spec.n % 128 or spec.k % 128:
        return f"block-scaled GEMMs here need N and K multiples of 128 (got N={spec.n}, K={spec.k})"
    return nvidia_fp8(spec, platform)


def deepgemm(spec, platform) -> str | None:
    if platform.capability not in gates.DEEPGEMM_FLOAT_SCALES:
        return (
            f"DeepGEMM on {platform.capability} casts fp32 scale factors to UE8M0 (powers of two): "
            "the contract's fp32 block scales would be rounded"
        )
    return block_scales(spec, platform)


def flashinfer_groupwise(spec, platform) -> str | None:
    if spec.out_dtype not in (torch.bfloat16, torch.float16):
        return "gemm_fp8_nt_groupwise writes bf16 or fp16 (fp32 outputs are rejected for fp8 GEMMs)"
    return block_scales(spec, platform)


def int_mm(spec, platform) -> str | None:
    if spec.n % 8 or spec.k % 8:
        return f"torch._int_mm needs N and K multiples of 8 (got N={spec.n}, K={spec.k})"
    return None


# --- communication -----------------------------------------------------------------------------------


def symm_mem_all_reduce(spec, platform) -> str | None:
    sizes = gates.SYMM_MEM_MAX_BYTES.get(platform.capability, {})
    if spec.world_size not in sizes:
        return f"no symmetric-memory size table for world size {spec.world_size} on {platform.capability}"
    if spec.max_bytes is None or spec.max_bytes > sizes[spec.world_size]:
        return (
            f"messages up to {sizes[spec.world_size]} bytes at world size {spec.world_size} "
            f"(this size class: {spec.max_bytes or 'unbounded'}); NCCL serves larger ones"
        )
    return None


# --- microscaling ------------------------------------------------------------------------------------

FLASHINFER_MX_GEMMS = (("nvfp4", "nvfp4"), ("mxfp8", "mxfp8"), ("mxfp8", "mxfp4"))


def flashinfer_mx_gemm(spec, platform) -> str | None:
    pair = (spec.act_format, spec.weight_format)
    if pair not in FLASHINFER_MX_GEMMS:
        return (
            f"activations {spec.act_format!r} x weights {spec.weight_format!r}: FlashInfer's block-scaled "
            "GEMMs here are mm_fp4 (nvfp4 x nvfp4), mm_mxfp8 (mxfp8 x mxfp8) and the mxfp8 x mxfp4 group "
            "GEMM, both operands quantized"
        )
    if spec.dtype not in (torch.bfloat16, torch.float16):
        return f"output {spec.dtype}: mm_fp4 and mm_mxfp8 write bf16 or fp16"
    if pair == ("mxfp8", "mxfp4"):
        n_align, k_align = gates.FLASHINFER_GROUP_GEMM_ALIGN_N, gates.FLASHINFER_GROUP_GEMM_ALIGN_K
        if spec.n % n_align or spec.k % k_align:
            return (
                f"N={spec.n}, K={spec.k}: group_gemm_mxfp8_mxfp4_nt_groupwise needs N a multiple of "
                f"{n_align} and K of {k_align}"
            )
        return None
    align = gates.FLASHINFER_MX_GEMM_ALIGN
    if spec.n % align or spec.k % align:
        return f"N={spec.n}, K={spec.k}: the CUTLASS block-scaled GEMMs need N and K multiples of {align}"
    least = gates.FLASHINFER_MM_MXFP8_MIN_NK
    if spec.weight_format == "mxfp8" and (spec.n < least or spec.k < least):
        return f"N={spec.n}, K={spec.k}: mm_mxfp8 needs N and K of at least {least}"
    return None


def flashinfer_fp4_quantize(spec, platform) -> str | None:
    if spec.format != "nvfp4":
        return (
            f"format {spec.format!r}: FlashInfer rounds the e8m0 scale up from amax / elem_max, not OCP's "
            "floor rule the contract fixes; only nvfp4 is served"
        )
    if spec.dtype not in (torch.float16, torch.bfloat16):
        return f"input {spec.dtype}: fp4_quantize's CUDA backend reads fp16 or bf16"
    return None
