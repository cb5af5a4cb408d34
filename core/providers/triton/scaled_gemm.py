"""Triton quant.fp8_gemm and quant.int8_gemm (contracts in anyaccel.ops.quant):
out = (a * a_scale) @ (b * b_scale).T + bias, with a [M, K], b [N, K] (nn.Linear weight).

A program computes a BLOCK_M x BLOCK_N tile over K steps of BLOCK_K. Tensor and channel scales multiply the
finished accumulator; 128x128 block scales (fp8 only) multiply each K step's partial product, so BLOCK_K is
128 there. int8 products accumulate exactly in int32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.quant import BLOCK, GemmSpec
from anyaccel.platforms.base import Platform

from .jitlib import mma
from .launch import cdiv, interpreting
from .tuning import Tuning, split_options

TENSOR, CHANNEL, BLOCKWISE = 0, 1, 2  # values of the SCALES constexpr
SCALE_CODES = {"tensor": TENSOR, "channel": CHANNEL, "block": BLOCKWISE}


@triton.jit
def _scaled_gemm_kernel(
    a_ptr,
    b_ptr,
    a_scale_ptr,
    b_scale_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    a_stride,
    b_stride,
    out_stride,
    a_scale_stride,
    b_scale_stride,
    SCALES: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    INT8: tl.constexpr,
    FP32_DOT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    kk = tl.arange(0, BLOCK_K)
    m_ok = m < M
    n_ok = n < N
    if INT8:
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.int32)
    else:
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + kk
        a = tl.load(
            a_ptr + m[:, None] * a_stride + k[None, :], mask=m_ok[:, None] & (k < K)[None, :], other=0.0
        )
        b = tl.load(
            b_ptr + n[None, :] * b_stride + k[:, None], mask=n_ok[None, :] & (k < K)[:, None], other=0.0
        )
        if INT8:
            acc = tl.dot(a, b, acc)
        elif SCALES == 2:
            # block scales change every 128 columns of K: scale each step's partial product
            a_s = tl.load(a_scale_ptr + m * a_scale_stride + k0 // 128, mask=m_ok, other=0.0)
            b_s = tl.load(b_scale_ptr + (n // 128) * b_scale_stride + k0 // 128, mask=n_ok, other=0.0)
            part = mma(tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32), a, b, FP32_DOT)
            acc += part * a_s[:, None] * b_s[None, :]
        else:
            acc = mma(acc, a, b, FP32_DOT)
    out = acc.to(tl.float32)
    if SCALES == 0:
        out = out * tl.load(a_scale_ptr) * tl.load(b_scale_ptr)
    elif SCALES == 1:
        a_s = tl.load(a_scale_ptr + m, mask=m_ok, other=0.0)
        b_s = tl.load(b_scale_ptr + n, mask=n_ok, other=0.0)
        out = out * a_s[:, None] * b_s[None, :]
    if HAS_BIAS:
        out += tl.load(bias_ptr + n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(
        out_ptr + m[:, None] * out_stride + n[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=m_ok[:, None] & n_ok[None, :],
    )


def _gemm(kernel_name: str, spec: GemmSpec, platform: Platform, int8: bool) -> Callable[..., Any]:
    tuning = Tuning(kernel_name, platform)
    scales = SCALE_CODES[spec.scales]
    fp32_products = interpreting() and not int8  # the interpreter cannot multiply fp8 operands

    def gemm(
        a: torch.Tensor,
        b: torch.Tensor,
        a_scale: torch.Tensor,
        b_scale: torch.Tensor,
        out_dtype: torch.dtype,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        (m, k), n = a.shape, b.shape[0]
        out = torch.empty((m, n), dtype=out_dtype, device=a.device)
        if out.numel() == 0:
            return out

        def launch(config: dict[str, Any]) -> None:
            consts, options = split_options(config)
            block_k = BLOCK if scales == BLOCKWISE else consts["BLOCK_K"]
            _scaled_gemm_kernel[(cdiv(m, consts["BLOCK_M"]), cdiv(n, consts["BLOCK_N"]))](
                a,
                b,
                a_scale,
                b_scale,
                a_scale if bias is None else bias,
                out,
                m,
                n,
                k,
                a.stride(0),
                b.stride(0),
                out.stride(0),
                a_scale.stride(0) if a_scale.dim() > 1 else 0,
                b_scale.stride(0) if b_scale.dim() > 1 else 0,
                SCALES=scales,
                HAS_BIAS=bias is not None,
                INT8=int8,
                FP32_DOT=fp32_products,
                BLOCK_M=consts["BLOCK_M"],
                BLOCK_N=consts["BLOCK_N"],
                BLOCK_K=block_k,
                **options,
            )

        launch(tuning.pick(m, bench=lambda config: benchmark(launch, config)))
        return out

    gemm.__name__ = f"triton_{kernel_name.split('.', 1)[1]}"
    return gemm


def benchmark(launch: Callable[[dict[str, Any]], None], config: dict[str, Any]) -> float:
    """Median milliseconds of one launch with `config` (used once per device and bucket, then cached)."""
    return triton.testing.do_bench(lambda: launch(config), warmup=5, rep=20)


def fp8_gemm(spec: GemmSpec, platform: Platform) -> Callable[..., Any]:
    return _gemm("triton.fp8_gemm", spec, platform, int8=False)


def int8_gemm(spec: GemmSpec, platform: Platform) -> Callable[..., Any]:
    return _gemm("triton.int8_gemm", spec, platform, int8=True)
