"""Triton activation.silu_and_mul and activation.gelu_and_mul (contracts in anyaccel.ops.activation).

A program computes a ROWS x BLOCK_I tile of act(gate) * up in fp32 and rounds it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.activation import ActivationSpec
from anyaccel.platforms.base import Platform

from .jitlib import ACTIVATION_CODES, activate
from .launch import cdiv, next_pow2
from .tuning import Tuning, split_options


@triton.jit
def _gated_kernel(
    x_ptr, out_ptr, rows, inter, x_stride, ACT: tl.constexpr, ROWS: tl.constexpr, BLOCK_I: tl.constexpr
):
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    col = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    mask = (row < rows)[:, None] & (col < inter)[None, :]
    src = x_ptr + row[:, None] * x_stride + col[None, :]
    gate = tl.load(src, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(src + inter, mask=mask, other=0.0).to(tl.float32)
    out = activate(gate, ACT) * up
    tl.store(out_ptr + row[:, None] * inter + col[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


def _gated(tuning: Tuning, x: torch.Tensor, act: int) -> torch.Tensor:
    inter = x.shape[-1] // 2
    rows = x.reshape(-1, x.shape[-1])
    out = torch.empty((rows.shape[0], inter), dtype=x.dtype, device=x.device)
    if out.numel():
        consts, options = split_options(tuning.pick(rows.shape[0]))
        block_i = min(next_pow2(inter), consts["BLOCK_I"])
        grid = (cdiv(rows.shape[0], consts["ROWS"]), cdiv(inter, block_i))
        _gated_kernel[grid](
            rows,
            out,
            rows.shape[0],
            inter,
            rows.stride(0),
            ACT=act,
            ROWS=consts["ROWS"],
            BLOCK_I=block_i,
            **options,
        )
    return out.view(*x.shape[:-1], inter)


def silu_and_mul(spec: ActivationSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.silu_and_mul", platform)

    def triton_silu_and_mul(x: torch.Tensor) -> torch.Tensor:
        return _gated(tuning, x, ACTIVATION_CODES["silu"])

    return triton_silu_and_mul


def gelu_and_mul(spec: ActivationSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.gelu_and_mul", platform)

    def triton_gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
        if approximate not in ("none", "tanh"):
            raise ValueError(
                f"activation.gelu_and_mul: approximate must be 'none' or 'tanh', got {approximate!r}"
            )
        return _gated(tuning, x, ACTIVATION_CODES[approximate])

    return triton_gelu_and_mul
