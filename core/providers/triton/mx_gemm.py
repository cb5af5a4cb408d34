"""Triton quant.mx_gemm (contract in anyaccel.ops.mx; formats in anyaccel.ops.microscaling).

Each K step loads a BLOCK_K x BLOCK_N weight tile (fp8 elements, or the bytes holding two e2m1 nibbles) with
its block scales and dequantizes it in registers (mxlib.load_operand), leaving nvfp4's global scale for the
end. Unquantized activations multiply the tile rounded to their own dtype; quantized ones (mxfp8, nvfp4)
are dequantized the same way and both operands multiply in bf16, which holds every e4m3 x 2^k and
e2m1 x e4m3 value exactly, so the products are exact and only fp32 accumulation rounds. The global scales
multiply the accumulator once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.mx import MXGemmSpec
from anyaccel.platforms.base import Platform

from .jitlib import mma
from .launch import cdiv, fp32_dot
from .mxlib import FORMAT_CODES, load_operand
from .scaled_gemm import benchmark
from .tuning import Tuning, split_options


@triton.jit
def _mx_gemm_kernel(
    a_ptr,
    a_scale_ptr,
    a_global_ptr,
    w_ptr,
    w_scale_ptr,
    w_global_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    a_stride,
    out_stride,
    A_FMT: tl.constexpr,
    W_FMT: tl.constexpr,
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
        w = load_operand(w_ptr, w_scale_ptr, n[None, :], k[:, None], n_ok[None, :] & k_ok[:, None], K, W_FMT)
        a_mask = m_ok[:, None] & k_ok[None, :]
        if A_FMT < 0:
            a = tl.load(a_ptr + m[:, None] * a_stride + k[None, :], mask=a_mask, other=0.0)
            w = w.to(a_ptr.dtype.element_ty)
        else:
            a = load_operand(a_ptr, a_scale_ptr, m[:, None], k[None, :], a_mask, K, A_FMT).to(tl.bfloat16)
            w = w.to(tl.bfloat16)
        acc = mma(acc, a, w, FP32_DOT)
    if W_FMT == 2:
        acc *= tl.load(w_global_ptr)
    if A_FMT == 2:
        acc *= tl.load(a_global_ptr)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(
        out_ptr + m[:, None] * out_stride + n[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=m_ok[:, None] & n_ok[None, :],
    )


def mx_gemm(spec: MXGemmSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.mx_gemm", platform)
    w_code, a_code = FORMAT_CODES[spec.weight_format], FORMAT_CODES[spec.act_format]
    use_fp32_dot = fp32_dot(spec.dtype)

    def triton_mx_gemm(
        a: torch.Tensor,
        w: torch.Tensor,
        w_scale: torch.Tensor,
        out_dtype: torch.dtype,
        a_scale: torch.Tensor | None = None,
        w_global_scale: torch.Tensor | None = None,
        a_global_scale: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        m, n = a.shape[0], w.shape[0]
        out = torch.empty((m, n), dtype=out_dtype, device=a.device)
        if out.numel() == 0:
            return out
        # the kernel indexes operands and scales as contiguous rows (a no-op for the usual layouts)
        a = a if a.stride(-1) == 1 and (a_code < 0 or a.is_contiguous()) else a.contiguous()
        w, w_scale = w.contiguous(), w_scale.contiguous()
        a_scale = None if a_scale is None else a_scale.contiguous()

        def launch(config: dict[str, Any]) -> None:
            consts, options = split_options(config)
            _mx_gemm_kernel[(cdiv(m, consts["BLOCK_M"]), cdiv(n, consts["BLOCK_N"]))](
                a,
                w_scale if a_scale is None else a_scale,  # stand-ins are never read
                w_scale if a_global_scale is None else a_global_scale,
                w,
                w_scale,
                w_scale if w_global_scale is None else w_global_scale,
                w_scale if bias is None else bias,
                out,
                m,
                n,
                spec.k,
                a.stride(0),
                out.stride(0),
                A_FMT=a_code,
                W_FMT=w_code,
                HAS_BIAS=bias is not None,
                FP32_DOT=use_fp32_dot,
                **consts,
                **options,
            )

        launch(tuning.pick(m, bench=lambda config: benchmark(launch, config)))
        return out

    return triton_mx_gemm
