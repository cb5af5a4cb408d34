"""Triton quant.w4a16_gemm (contract in anyaccel.ops.quant): out = x @ dequant(qweight).T + bias for GPTQ
(v1 zeros, optional act-order g_idx), AWQ and affine (GGUF Q4_0/Q4_1/Q4_K, MLX) weights, dequantized tile by
tile in registers.

A program computes a BLOCK_M x BLOCK_N tile; each K step unpacks a BLOCK_K x BLOCK_N tile of nibbles, gathers
each element's group scale and zero point, forms (q - z) * s in fp32, rounds it to x's dtype and multiplies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.quant import W4A16Spec
from anyaccel.platforms.base import Platform

from .jitlib import mma
from .launch import cdiv, fp32_dot
from .scaled_gemm import benchmark
from .tuning import Tuning, split_options


@triton.jit
def _awq_shift(col):
    """Bit offset of output column `col` in its AWQ word (slot i holds column 8c + [0,2,4,6,1,3,5,7][i])."""
    j = col % 8
    return ((j // 2) + (j % 2) * 4) * 4


@triton.jit
def _w4a16_kernel(
    x_ptr,
    qw_ptr,
    scales_ptr,
    qzeros_ptr,
    g_idx_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    group_size,
    x_stride,
    out_stride,
    AWQ: tl.constexpr,
    AFFINE: tl.constexpr,
    HAS_ZEROS: tl.constexpr,
    ACT_ORDER: tl.constexpr,
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
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < K
        kn_ok = k_ok[:, None] & n_ok[None, :]
        x = tl.load(x_ptr + m[:, None] * x_stride + k[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        if AFFINE:  # qweight [N, K/8] packed along K; scales and offsets [N, K/G] (32 or 16 bits)
            word = tl.load(qw_ptr + n[None, :] * (K // 8) + k[:, None] // 8, mask=kn_ok, other=0)
            q = (word >> ((k[:, None] % 8) * 4)) & 0xF
            groups = K // group_size
            at = n[None, :] * groups + k[:, None] // group_size
            s = tl.load(scales_ptr + at, mask=kn_ok, other=0.0).to(tl.float32)
            off = tl.load(qzeros_ptr + at, mask=kn_ok, other=0.0).to(tl.float32)
            w = (q.to(tl.float32) * s + off).to(x_ptr.dtype.element_ty)
        else:
            if AWQ:  # qweight [K, N/8], packed along N
                word = tl.load(qw_ptr + k[:, None] * (N // 8) + n[None, :] // 8, mask=kn_ok, other=0)
                q = (word >> _awq_shift(n)[None, :]) & 0xF
            else:  # GPTQ qweight [K/8, N], packed along K
                word = tl.load(qw_ptr + (k[:, None] // 8) * N + n[None, :], mask=kn_ok, other=0)
                q = (word >> ((k[:, None] % 8) * 4)) & 0xF
            if ACT_ORDER:
                g = tl.load(g_idx_ptr + k, mask=k_ok, other=0)
            else:
                g = k // group_size
            s = tl.load(scales_ptr + g[:, None] * N + n[None, :], mask=kn_ok, other=0.0).to(tl.float32)
            if HAS_ZEROS:
                zword = tl.load(qzeros_ptr + g[:, None] * (N // 8) + n[None, :] // 8, mask=kn_ok, other=0)
                if AWQ:
                    z = (zword >> _awq_shift(n)[None, :]) & 0xF
                else:
                    z = ((zword >> ((n[None, :] % 8) * 4)) & 0xF) + 1  # GPTQ v1 stores zero - 1
            else:
                z = 8
            w = ((q - z).to(tl.float32) * s).to(x_ptr.dtype.element_ty)
        acc = mma(acc, x, w, FP32_DOT)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(
        out_ptr + m[:, None] * out_stride + n[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=m_ok[:, None] & n_ok[None, :],
    )


def w4a16_gemm(spec: W4A16Spec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.w4a16_gemm", platform)
    use_fp32_dot = fp32_dot(spec.dtype)

    def triton_w4a16_gemm(
        x: torch.Tensor,
        qweight: torch.Tensor,
        scales: torch.Tensor,
        qzeros: torch.Tensor | None = None,
        g_idx: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        m, k = x.shape
        n = scales.shape[0] if spec.format == "affine" else scales.shape[1]
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
        if out.numel() == 0:
            return out
        absent = scales  # stands in for the optional tensors a constexpr switches off; never read

        def launch(config: dict[str, Any]) -> None:
            consts, options = split_options(config)
            _w4a16_kernel[(cdiv(m, consts["BLOCK_M"]), cdiv(n, consts["BLOCK_N"]))](
                x,
                qweight,
                scales,
                absent if qzeros is None else qzeros,
                absent if g_idx is None else g_idx,
                absent if bias is None else bias,
                out,
                m,
                n,
                k,
                spec.group_size,
                x.stride(0),
                out.stride(0),
                AWQ=spec.format == "awq",
                AFFINE=spec.format == "affine",
                HAS_ZEROS=qzeros is not None,
                ACT_ORDER=g_idx is not None,
                HAS_BIAS=bias is not None,
                FP32_DOT=use_fp32_dot,
                **consts,
                **options,
            )

        launch(tuning.pick(m, bench=lambda config: benchmark(launch, config)))
        return out

    return triton_w4a16_gemm
