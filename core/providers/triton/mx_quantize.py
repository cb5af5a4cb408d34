"""Triton quant.quantize_mx (contract in anyaccel.ops.mx; formats in anyaccel.ops.microscaling).

A program quantizes ROWS rows x NB scale blocks. It loads the even and the odd elements of each block as two
[ROWS, NB, BLOCK/2] tiles (the low and high nibbles of the packed formats), reduces each block's amax, stores
its scale (e8m0 from the float32 exponent bits, or nvfp4's e4m3(amax / (6 * global))) and the elements
rounded to nearest even on their grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.microscaling import FORMATS
from anyaccel.ops.mx import MXQuantSpec
from anyaccel.platforms.base import Platform

from .jitlib import saturate_fp8
from .launch import cdiv, round_fp8_in_kernel
from .mxlib import FORMAT_CODES, e2m1_code, mx_exponent
from .tuning import Tuning, split_options


@triton.jit
def _quantize_mx_kernel(
    x_ptr,
    q_ptr,
    s_ptr,
    g_ptr,
    rows,
    k,
    x_stride,
    q_stride,
    s_stride,
    FMT: tl.constexpr,
    BLOCK: tl.constexpr,
    EMAX: tl.constexpr,
    ROUND: tl.constexpr,
    ROWS: tl.constexpr,
    NB: tl.constexpr,
):
    HALF: tl.constexpr = BLOCK // 2
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    blk = tl.program_id(1) * NB + tl.arange(0, NB)
    j = tl.arange(0, HALF)
    ok = (row < rows)[:, None] & (blk < k // BLOCK)[None, :]  # [ROWS, NB]
    mask = ok[:, :, None]
    even = blk[None, :, None] * BLOCK + 2 * j[None, None, :]  # column of element 2j of each block
    x_at = x_ptr + row[:, None, None] * x_stride + even
    xe = tl.load(x_at, mask=mask, other=0.0).to(tl.float32)
    xo = tl.load(x_at + 1, mask=mask, other=0.0).to(tl.float32)
    amax = tl.maximum(tl.max(tl.abs(xe), axis=2), tl.max(tl.abs(xo), axis=2))  # [ROWS, NB]
    s_at = s_ptr + row[:, None] * s_stride + blk[None, :]
    if FMT == 2:  # nvfp4: e4m3 block scale of amax / (6 * global), elements over scale * global
        g = tl.load(g_ptr)
        scale = saturate_fp8(amax / (6.0 * g), 448.0, ROUND, -6)
        scale_e4m3 = scale.to(s_ptr.dtype.element_ty)
        tl.store(s_at, scale_e4m3, mask=ok)
        full = (scale_e4m3.to(tl.float32) * g)[:, :, None]
        safe = tl.where(full > 0, full, 1.0)  # a zero scale makes an all-zero block
        ye = tl.where(full > 0, xe / safe, 0.0)
        yo = tl.where(full > 0, xo / safe, 0.0)
    else:  # e8m0 exponent; 2^-exp built from its bits, so the scaling is exact
        exp = mx_exponent(amax, EMAX)
        tl.store(s_at, (exp + 127).to(tl.uint8), mask=ok)
        pow2 = ((127 - exp) << 23).to(tl.float32, bitcast=True)[:, :, None]
        ye = xe * pow2
        yo = xo * pow2
    if FMT == 0:  # mxfp8: e4m3 elements in place
        q_at = q_ptr + row[:, None, None] * q_stride + even
        tl.store(q_at, saturate_fp8(ye, 448.0, ROUND, -6).to(q_ptr.dtype.element_ty), mask=mask)
        tl.store(q_at + 1, saturate_fp8(yo, 448.0, ROUND, -6).to(q_ptr.dtype.element_ty), mask=mask)
    else:  # two e2m1 per byte, element 2j in the low nibble
        packed = e2m1_code(ye) | (e2m1_code(yo) << 4)
        q_at = q_ptr + row[:, None, None] * q_stride + blk[None, :, None] * HALF + j[None, None, :]
        tl.store(q_at, packed.to(tl.uint8), mask=mask)


def quantize_mx(spec: MXQuantSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.quantize_mx", platform)
    form = FORMATS[spec.format]
    code = FORMAT_CODES[spec.format]
    round_fp8 = round_fp8_in_kernel()

    def triton_quantize_mx(
        x: torch.Tensor, fmt: str, global_scale: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows, k = x.shape
        q = torch.empty((rows, form.element_cols(k)), dtype=form.element_dtype, device=x.device)
        scales = torch.empty((rows, form.scale_cols(k)), dtype=form.scale_dtype, device=x.device)
        if x.numel() == 0:
            return q, scales
        x = x if x.stride(1) == 1 else x.contiguous()
        consts, options = split_options(tuning.pick(rows))
        nb = consts["NB"]
        _quantize_mx_kernel[(cdiv(rows, consts["ROWS"]), cdiv(k // form.block, nb))](
            x,
            q,
            scales,
            global_scale if global_scale is not None else scales,  # never read without a global
            rows,
            k,
            x.stride(0),
            q.stride(0),
            scales.stride(0),
            FMT=code,
            BLOCK=form.block,
            EMAX=form.emax,
            ROUND=round_fp8,
            ROWS=consts["ROWS"],
            NB=nb,
            **options,
        )
        return q, scales

    return triton_quantize_mx
