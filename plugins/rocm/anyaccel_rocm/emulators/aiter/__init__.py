"""Emulated `aiter` (ROCm/aiter at commit e404860): the functions anyaccel-rocm's kernels call, with
AITER's signatures and argument checks, computed in plain torch on the host. Importing it needs the
emulated rocm platform (the fp8 dtype and the gfx come from it)."""

from __future__ import annotations

from . import dtypes
from .activation import gelu_and_mul, gelu_tanh_and_mul, silu_and_mul
from .attention import pa_fwd_asm, paged_attention_v1
from .cache import reshape_and_cache, reshape_and_cache_flash
from .enums import ActivationType, QuantType
from .gemm import gemm_a8w8, gemm_a8w8_blockscale
from .mha import flash_attn_varlen_func
from .norm import rms_norm, rmsnorm2d_fwd_with_add
from .quant import per_group_quant_hip, per_tensor_quant_hip, per_token_quant_hip
from .rope import rope_cached_positions_2c_fwd_inplace
from .topk import biased_grouped_topk, grouped_topk, topk_softmax

__all__ = [
    "ActivationType",
    "QuantType",
    "biased_grouped_topk",
    "dtypes",
    "flash_attn_varlen_func",
    "gelu_and_mul",
    "gelu_tanh_and_mul",
    "gemm_a8w8",
    "gemm_a8w8_blockscale",
    "grouped_topk",
    "pa_fwd_asm",
    "per_group_quant_hip",
    "per_tensor_quant_hip",
    "per_token_quant_hip",
    "paged_attention_v1",
    "reshape_and_cache",
    "reshape_and_cache_flash",
    "rms_norm",
    "rmsnorm2d_fwd_with_add",
    "rope_cached_positions_2c_fwd_inplace",
    "silu_and_mul",
    "topk_softmax",
]
