"""quant.fp8_gemm (block scales) through DeepGEMM's fp8_gemm_nt.

Our operands are DeepGEMM's "NT" problem as they are: a [M, K] and b [N, K] e4m3fn, K-major; a_scale
[M, K/128] per 1x128 and b_scale [N/128, K/128] per 128x128 in float32 (its default recipe). DeepGEMM
writes bf16 or fp32 into `d` and has no bias: fp16 outputs go through an fp32 `d`, the bias is added after.
"""

from __future__ import annotations

import torch
from deep_gemm import fp8_gemm_nt

from anyaccel.ops.quant import GemmSpec


def fp8_gemm(spec: GemmSpec, platform):
    dtype = spec.out_dtype
    d_dtype = torch.bfloat16 if dtype == torch.bfloat16 else torch.float32

    def deepgemm_fp8_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
        d = torch.empty(a.shape[0], b.shape[0], dtype=d_dtype, device=a.device)
        fp8_gemm_nt((a, a_scale), (b, b_scale), d)
        if bias is not None:
            return (d.float() + bias.float()).to(dtype)
        return d if d_dtype == dtype else d.to(dtype)

    return deepgemm_fp8_gemm
