"""rope.apply in C for float32 (csrc/rope.c): q and k rotated in one call that reads each head's row once,
from the strided views of a fused qkv projection, where the reference makes about a dozen ATen calls."""

from __future__ import annotations

import torch

from anyaccel.ops.base import expect_tensor

from ..native import as_dtype, ids_as, native, ptr

OP = "rope.apply"


def native_apply(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    # the C kernel trusts these shapes: checked on every call, not only under ANYACCEL_VALIDATE
    t, hq, d = q.shape
    expect_tensor(OP, "q", q, dtype=torch.float32, dims=3)
    expect_tensor(OP, "k", k, dtype=torch.float32, shape=(t, None, d))
    expect_tensor(OP, "positions", positions, shape=(t,))
    expect_tensor(OP, "cos_sin_cache", cos_sin_cache, dims=2)
    rotary_dim = cos_sin_cache.shape[1]
    if rotary_dim > d or rotary_dim % 2:
        raise ValueError(f"{OP}: cos_sin_cache has {rotary_dim} columns, expected an even count <= {d}")
    q = q if q.stride(-1) == 1 else q.contiguous()
    k = k if k.stride(-1) == 1 else k.contiguous()
    positions = ids_as(OP, "positions", positions, torch.int64)
    cache = as_dtype(cos_sin_cache, torch.float32)
    q_out = torch.empty(q.shape, dtype=torch.float32)
    k_out = torch.empty(k.shape, dtype=torch.float32)
    status = native().anyaccel_rope_f32(
        ptr(q), q.stride(0), q.stride(1), hq, ptr(k), k.stride(0), k.stride(1), k.shape[1], t, d,
        ptr(positions), ptr(cache), rotary_dim, cache.shape[0], int(is_neox), ptr(q_out), ptr(k_out),
    )  # fmt: skip
    if status:
        raise ValueError(f"{OP}: a position is outside the cos/sin cache's {cache.shape[0]} rows")
    return q_out, k_out
