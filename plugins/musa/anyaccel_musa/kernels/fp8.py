"""quant.fp8_gemm (128-block scales) through MATE's DeepGEMM-compatible fp8_gemm_nt (MP31).

Our operands are the "NT" problem as they are: a [M, K] and b [N, K] e4m3fn, K-major; a_scale [M, K/128]
per 1x128 group (what quant.quantize_fp8 with "block" granularity writes: the per-token-group quantization,
served on MUSA by the Triton kernel) and b_scale [N/128, K/128] per 128x128 tile, float32, contiguous.
MATE writes bf16 or fp16 into `d` and takes no C operand: the bias is added after.
"""

from __future__ import annotations

import torch
from mate.deep_gemm import fp8_gemm_nt

from anyaccel.ops.quant import GemmSpec


def fp8_gemm(spec: GemmSpec, platform):
    dtype = spec.out_dtype

    def mate_fp8_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
        d = torch.empty(a.shape[0], b.shape[0], dtype=dtype, device=a.device)
        fp8_gemm_nt((a.contiguous(), a_scale.contiguous()), (b, b_scale), d)
        if bias is not None:
            return (d.float() + bias.float()).to(dtype)
        return d

    return mate_fp8_gemm


def prepare(spec, weights: dict) -> dict:
    """The weight and its tile scales contiguous, once at load (MATE reads both K-major)."""
    return weights | {"b": weights["b"].contiguous(), "b_scale": weights["b_scale"].float().contiguous()}
