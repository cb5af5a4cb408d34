"""quant.fp8_gemm (block scales) through FlashInfer's gemm_fp8_nt_groupwise (CUTLASS backend).

Scales in FlashInfer's "MN" major mode: b_scale [N/128, K/128] becomes [K/128, N/128] once (prepare), a_scale
[M, K/128] becomes [K/128, M] per call (a small copy). Outputs bf16/fp16; the bias is added afterwards.
"""

from __future__ import annotations

import torch
from flashinfer.gemm import gemm_fp8_nt_groupwise

from anyaccel.ops.quant import GemmSpec


def prepare(spec: GemmSpec, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    scale = weights.get("b_scale")
    return {**weights, "b_scale": None if scale is None else scale.t().contiguous()}


def fp8_gemm(spec: GemmSpec, platform):
    dtype = spec.out_dtype

    def groupwise_fp8_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
        out = gemm_fp8_nt_groupwise(
            a, b, a_scale.t().contiguous(), b_scale, scale_major_mode="MN", out_dtype=dtype
        )
        return out if bias is None else out + bias

    return groupwise_fp8_gemm
