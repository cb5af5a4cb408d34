"""Triton quant.quantize_fp8 and quant.quantize_int8 (contracts in anyaccel.ops.quant).

A program quantizes ROWS rows x one scale group (128 columns for "block", the whole row for "token"),
walking the group in chunks of BLOCK_K: the first pass finds the group's amax and stores its scale, the
second divides and saturates. Per-tensor scales are one amax reduction (dynamic) or the given scale
(static), after which the same kernel quantizes with that scale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.quant import BLOCK, QuantSpec
from anyaccel.platforms.base import Platform

from .jitlib import saturate_fp8
from .launch import FP8_MAX, FP8_MIN_EXP, cdiv, next_pow2, round_fp8_in_kernel
from .tuning import Tuning, split_options

INT8_MAX = 127.0


@triton.jit
def _quantize_kernel(
    x_ptr,
    q_ptr,
    scale_ptr,
    rows,
    cols,
    group,
    x_stride,
    q_stride,
    scale_stride,
    GIVEN_SCALE: tl.constexpr,
    INT8: tl.constexpr,
    Q_MAX: tl.constexpr,
    ROUND: tl.constexpr,
    MIN_EXP: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    g = tl.program_id(1)
    row_ok = row < rows
    lo = g * group
    hi = tl.minimum(lo + group, cols)
    cols_in_chunk = tl.arange(0, BLOCK_K)
    if GIVEN_SCALE:
        scale = tl.zeros([ROWS], dtype=tl.float32) + tl.load(scale_ptr)
    else:
        amax = tl.zeros([ROWS], dtype=tl.float32)
        for start in range(lo, hi, BLOCK_K):
            c = start + cols_in_chunk
            mask = row_ok[:, None] & (c < hi)[None, :]
            x = tl.load(x_ptr + row[:, None] * x_stride + c[None, :], mask=mask, other=0.0).to(tl.float32)
            amax = tl.maximum(amax, tl.max(tl.abs(x), axis=1))
        scale = tl.maximum(amax, 1e-12) / Q_MAX
        tl.store(scale_ptr + row * scale_stride + g, scale, mask=row_ok)
    for start in range(lo, hi, BLOCK_K):
        c = start + cols_in_chunk
        mask = row_ok[:, None] & (c < hi)[None, :]
        x = tl.load(x_ptr + row[:, None] * x_stride + c[None, :], mask=mask, other=0.0).to(tl.float32)
        y = x / scale[:, None]
        if INT8:
            y = tl.clamp((y + 12582912.0) - 12582912.0, -Q_MAX, Q_MAX)  # + 1.5 * 2^23: round half to even
        else:
            y = saturate_fp8(y, Q_MAX, ROUND, MIN_EXP)
        tl.store(q_ptr + row[:, None] * q_stride + c[None, :], y.to(q_ptr.dtype.element_ty), mask=mask)


def _launch(
    tuning: Tuning,
    x: torch.Tensor,
    q: torch.Tensor,
    scale: torch.Tensor,
    group: int,
    given: bool,
    q_consts: dict[str, Any],
) -> None:
    rows, cols = x.shape
    if x.numel() == 0:
        return
    consts, options = split_options(tuning.pick(rows))
    block_k = min(next_pow2(group), consts["BLOCK_K"])
    _quantize_kernel[(cdiv(rows, consts["ROWS"]), cdiv(cols, group))](
        x,
        q,
        scale,
        rows,
        cols,
        group,
        x.stride(0),
        q.stride(0),
        scale.stride(0) if scale.dim() > 1 else 0,
        GIVEN_SCALE=given,
        ROWS=consts["ROWS"],
        BLOCK_K=block_k,
        **q_consts,
        **options,
    )


def quantize_fp8(spec: QuantSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.quantize_fp8", platform)
    fp8 = getattr(torch, spec.fp8_dtype)
    q_consts = {
        "INT8": False,
        "Q_MAX": FP8_MAX[fp8],
        "ROUND": round_fp8_in_kernel(),
        "MIN_EXP": FP8_MIN_EXP[fp8],
    }

    def triton_quantize_fp8(
        x: torch.Tensor, fp8_dtype: torch.dtype, granularity: str, scale: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = x.shape
        q = torch.empty((rows, cols), dtype=fp8_dtype, device=x.device)
        if granularity == "tensor":
            if scale is None:
                amax = x.abs().amax().float() if x.numel() else torch.zeros((), device=x.device)
                scale = (amax.clamp_min(1e-12) / FP8_MAX[fp8_dtype]).reshape(1)
            _launch(tuning, x, q, scale, max(cols, 1), True, q_consts)
            return q, scale
        group = BLOCK if granularity == "block" else max(cols, 1)
        scales = torch.empty((rows, cdiv(cols, group)), dtype=torch.float32, device=x.device)
        _launch(tuning, x, q, scales, group, False, q_consts)
        return q, scales

    return triton_quantize_fp8


def quantize_int8(spec: QuantSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.quantize_int8", platform)
    q_consts = {"INT8": True, "Q_MAX": INT8_MAX, "ROUND": False, "MIN_EXP": 0}

    def triton_quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = x.shape
        q = torch.empty((rows, cols), dtype=torch.int8, device=x.device)
        scales = torch.empty((rows, 1), dtype=torch.float32, device=x.device)
        _launch(tuning, x, q, scales, max(cols, 1), False, q_consts)
        return q, scales

    return triton_quantize_int8
