"""The paged KV layout AITER's assembly decode (pa_fwd_asm) reads, registered through the
`anyaccel_kv_layouts` hook so the engine allocates the cache in it when that kernel is selected.

AITER_PA_ASM, for 16-bit caches (x = 16 bytes / 2 = 8 elements), as csrc/py_itfs_cu/asm_pa.cu reads them:
    keys   [num_blocks, Hkv, D/8, block_size, 8]   (K [.., head_size/x, block_size, x])
    values [num_blocks, Hkv, block_size/8, D, 8]   (V [.., block_size/X, head_size, X]: "V shuffled")
The converters move the same tokens from and to NHD caches; the conformance kit uses them to run its NHD
cases in this layout, and nothing on the serving path calls them.
"""

from __future__ import annotations

import torch

from anyaccel.ops.kv_cache import KVLayout

X = 8  # 16 bytes of bf16/fp16
NAME = "AITER_PA_ASM"


def k_shape(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
    return (n, h, d // X, b, X)


def v_shape(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
    return (n, h, b // X, d, X)


def from_nhd(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, b, h, d = k.shape
    keys = k.reshape(n, b, h, d // X, X).permute(0, 2, 3, 1, 4).contiguous()
    values = v.reshape(n, b // X, X, h, d).permute(0, 3, 1, 4, 2).contiguous()
    return keys, values


def to_nhd(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, h, dx, b, x = k.shape
    keys = k.permute(0, 3, 1, 2, 4).reshape(n, b, h, dx * x)
    values = v.permute(0, 2, 4, 1, 3).reshape(n, b, h, dx * x)
    return keys, values


PA_ASM = KVLayout(NAME, k_shape, v_shape, from_nhd, to_nhd)
