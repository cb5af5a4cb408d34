"""fp8 GEMMs through AITER: gemm_a8w8 (per-token x per-channel scales) and gemm_a8w8_blockscale (1x128
activation groups x 128x128 weight tiles). Operands are AITER's fp8 for the gfx (e4m3fnuz on gfx942):
the fp8 scheme converts e4m3fn checkpoints once at load (anyaccel.schemes.fp8.to_fnuz)."""

from __future__ import annotations

import aiter

from . import warmup
from .warmup import attach


def gemm_a8w8(a, b, a_scale, b_scale, out_dtype, bias=None):
    return aiter.gemm_a8w8(a, b, a_scale, b_scale, bias, out_dtype)


def gemm_a8w8_blockscale(a, b, a_scale, b_scale, out_dtype, bias=None):
    """gemm_a8w8_blockscale has no bias argument: a bias is added to its output."""
    out = aiter.gemm_a8w8_blockscale(a, b, a_scale, b_scale, out_dtype)
    return out if bias is None else out.add_(bias.to(out.dtype))


attach(gemm_a8w8, warmup.fp8_gemm)
attach(gemm_a8w8_blockscale, warmup.fp8_gemm)
