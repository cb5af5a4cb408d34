"""Emulator of `flashinfer` (flashinfer-python 0.7.4): the functions and wrappers anyaccel-cuda calls,
re-exported at the top level as the package does. See each submodule for what it emulates."""

from __future__ import annotations

from .activation import gelu_and_mul, gelu_tanh_and_mul, silu_and_mul
from .decode import BatchDecodeWithPagedKVCacheWrapper, trtllm_batch_decode_with_kv_cache
from .fused_moe import cutlass_fused_moe, fused_topk_deepseek, trtllm_fp8_block_scale_routed_moe
from .gemm import gemm_fp8_nt_groupwise
from .gemm_mx import mm_fp4, mm_mxfp8
from .norm import fused_add_rmsnorm, rmsnorm
from .page import append_paged_kv_cache
from .prefill import BatchPrefillWithPagedKVCacheWrapper, trtllm_batch_context_with_kv_cache
from .quantization import fp4_quantize
from .rope import apply_rope_with_cos_sin_cache

__version__ = "0.7.4+anyaccel.emulated"

__all__ = [
    "BatchDecodeWithPagedKVCacheWrapper",
    "BatchPrefillWithPagedKVCacheWrapper",
    "append_paged_kv_cache",
    "apply_rope_with_cos_sin_cache",
    "cutlass_fused_moe",
    "fp4_quantize",
    "fused_add_rmsnorm",
    "fused_topk_deepseek",
    "gelu_and_mul",
    "gelu_tanh_and_mul",
    "gemm_fp8_nt_groupwise",
    "mm_fp4",
    "mm_mxfp8",
    "rmsnorm",
    "silu_and_mul",
    "trtllm_batch_context_with_kv_cache",
    "trtllm_batch_decode_with_kv_cache",
    "trtllm_fp8_block_scale_routed_moe",
]
