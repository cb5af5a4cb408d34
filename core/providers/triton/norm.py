"""Triton norm.rms_norm and norm.add_rms_norm (contracts in anyaccel.ops.norm).

Each program normalises ROWS rows, walking the hidden dim in chunks of BLOCK_H: a first pass accumulates
the fp32 sum of squares, a second pass scales and stores, so any hidden size works with bounded registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.norm import NormSpec
from anyaccel.platforms.base import Platform

from .launch import cdiv, next_pow2
from .tuning import Tuning, split_options


@triton.jit
def _rms_norm_kernel(
    x_ptr,
    res_ptr,
    w_ptr,
    out_ptr,
    rows,
    hidden,
    x_stride,
    res_stride,
    out_stride,
    eps,
    ADD_RESIDUAL: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = row < rows
    cols = tl.arange(0, BLOCK_H)
    sum_sq = tl.zeros([ROWS], dtype=tl.float32)
    for start in range(0, hidden, BLOCK_H):
        c = start + cols
        mask = row_ok[:, None] & (c < hidden)[None, :]
        x = tl.load(x_ptr + row[:, None] * x_stride + c[None, :], mask=mask, other=0.0)
        if ADD_RESIDUAL:
            # the sum is rounded to the stream's dtype before it is stored and normalised
            r = tl.load(res_ptr + row[:, None] * res_stride + c[None, :], mask=mask, other=0.0)
            x = (x.to(tl.float32) + r.to(tl.float32)).to(res_ptr.dtype.element_ty)
            tl.store(res_ptr + row[:, None] * res_stride + c[None, :], x, mask=mask)
        xf = x.to(tl.float32)
        sum_sq += tl.sum(xf * xf, axis=1)
    inv = 1.0 / tl.sqrt(sum_sq / hidden + eps)
    if ADD_RESIDUAL:
        tl.debug_barrier()  # the second pass re-reads the residual this program just wrote
        src_ptr, src_stride = res_ptr, res_stride
    else:
        src_ptr, src_stride = x_ptr, x_stride
    for start in range(0, hidden, BLOCK_H):
        c = start + cols
        mask = row_ok[:, None] & (c < hidden)[None, :]
        x = tl.load(src_ptr + row[:, None] * src_stride + c[None, :], mask=mask, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + c, mask=c < hidden, other=0.0).to(tl.float32)
        normed = (x * inv[:, None]).to(out_ptr.dtype.element_ty).to(tl.float32)
        tl.store(
            out_ptr + row[:, None] * out_stride + c[None, :],
            (normed * w[None, :]).to(out_ptr.dtype.element_ty),
            mask=mask,
        )


def _launch(
    tuning: Tuning,
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor,
    out: torch.Tensor,
    eps: float,
) -> None:
    rows, hidden = x.shape
    consts, options = split_options(tuning.pick(rows))
    block_h = min(next_pow2(hidden), consts["BLOCK_H"])
    res = residual if residual is not None else x
    _rms_norm_kernel[(cdiv(rows, consts["ROWS"]),)](
        x,
        res,
        weight,
        out,
        rows,
        hidden,
        x.stride(0),
        res.stride(0),
        out.stride(0),
        eps,
        ADD_RESIDUAL=residual is not None,
        ROWS=consts["ROWS"],
        BLOCK_H=block_h,
        **options,
    )


def rms_norm(spec: NormSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.rms_norm", platform)

    def triton_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])  # a view whenever the leading dims allow one
        out = torch.empty(rows.shape, dtype=x.dtype, device=x.device)
        if rows.numel():
            _launch(tuning, rows, None, weight, out, eps)
        return out.view(x.shape)

    return triton_rms_norm


def add_rms_norm(spec: NormSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.add_rms_norm", platform)

    def triton_add_rms_norm(
        x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
    ) -> None:
        if x.numel():
            _launch(tuning, x, residual, weight, x, eps)

    return triton_add_rms_norm
