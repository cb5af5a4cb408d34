"""activation.silu_and_mul in C for float32 (csrc/activation.c): one pass over the gate and up halves, where
the reference makes three ATen calls and two temporaries."""

from __future__ import annotations

import torch

from anyaccel.ops.base import expect, expect_tensor

from ..native import native

OP = "activation.silu_and_mul"


def native_silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """x [..., 2I] float32 with a contiguous last dim (rows may be strided) -> [..., I]."""
    expect_tensor(OP, "x", x, dtype=torch.float32)
    expect(OP, x.dim() >= 1 and x.shape[-1] % 2 == 0, f"x's last dim must be even, got {list(x.shape)}")
    width = x.shape[-1] // 2
    rows = x if x.dim() == 2 and x.stride(-1) == 1 else x.reshape(-1, 2 * width).contiguous()
    out = torch.empty(*x.shape[:-1], width, dtype=torch.float32)
    native().anyaccel_silu_and_mul_f32(rows.data_ptr(), rows.shape[0], width, rows.stride(0), out.data_ptr())
    return out
