"""Triton quant.w8a16_gemm (contract in anyaccel.ops.quant): out = x @ (qweight * scales).T + bias with int8
weights [N, K] and float32 group scales [N, K/G] (GGUF Q8_0 and Q6_K), dequantized tile by tile in
registers: each K step loads a BLOCK_K x BLOCK_N tile of int8 values and their group scales, forms q * s in
fp32, rounds it to x's dtype and multiplies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.quant import W8A16Spec
from anyaccel.platforms.base import Platform

from .jitlib import mma
from .launch import cdiv, fp32_dot
from .scaled_gemm import benchmark
from .tuning import Tuning, split_options


@triton.jit
def _w8a16_kernel(
    x_ptr,
    qw_ptr,
    scales_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    group_size,
    x_stride,
    out_stride,
    HAS_BIAS: tl.constexpr,
    FP32_DOT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = m < M
    n_ok = n < N
    groups = K // group_size
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < K
        kn_ok = k_ok[:, None] & n_ok[None, :]
        x = tl.load(x_ptr + m[:, None] * x_stride + k[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        q = tl.load(qw_ptr + n[None, :] * K + k[:, None], mask=kn_ok, other=0)
        s = tl.load(scales_ptr + n[None, :] * groups + k[:, None] // group_size, mask=kn_ok, other=0.0)
        w = (q.to(tl.float32) * s).to(x_ptr.dtype.element_ty)
        acc = mma(acc, x, w, FP32_DOT)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(
        out_ptr + m[:, None] * out_stride + n[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=m_ok[:, None] & n_ok[None, :],
    )


def w8a16_gemm(spec: W8A16Spec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.w8a16_gemm", platform)
    use_fp32_dot = fp32_dot(spec.dtype)

    def triton_w8a16_gemm(
        x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        m, k = x.shape
        n = qweight.shape[0]
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
        if out.numel() == 0:
            return out

        def launch(config: dict[str, Any]) -> None:
            consts, options = split_options(config)
            _w8a16_kernel[(cdiv(m, consts["BLOCK_M"]), cdiv(n, consts["BLOCK_N"]))](
                x,
                qweight,
                scales,
                scales if bias is None else bias,  # stands in when HAS_BIAS is off; never read
                out,
                m,
                n,
                k,
                spec.group_size,
                x.stride(0),
                out.stride(0),
                HAS_BIAS=bias is not None,
                FP32_DOT=use_fp32_dot,
                **consts,
                **options,
            )

        launch(tuning.pick(m, bench=lambda config: benchmark(launch, config)))
        return out

    return triton_w8a16_gemm
