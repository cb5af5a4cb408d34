"""The paged KV layouts AITER's assembly decode (pa_fwd_asm) reads, registered through the
`anyaccel_kv_layouts` hook so the engine allocates the cache in one when that kernel is selected.

pa_fwd_asm packs 16 bytes of the cache's elements (x = 16 // itemsize; csrc/py_itfs_cu/asm_pa.cu reads K
as [.., head_size/x, block_size, x] and V as [.., block_size/X, head_size, X], "V shuffled"):
    AITER_PA_ASM       16-bit caches, x = 8    keys [N, Hkv, D/8, bs, 8]    values [N, Hkv, bs/8, D, 8]
    AITER_PA_ASM_8BIT  fp8 caches, x = 16      keys [N, Hkv, D/16, bs, 16]  values [N, Hkv, bs/16, D, 16]
A layout's shape cannot depend on the cache dtype, hence two. The converters move the same tokens from
and to NHD caches; the conformance kit uses them to run its NHD cases in these layouts, and nothing on the
serving path calls them.
"""

from __future__ import annotations

import torch

from anyaccel.ops.kv_cache import KVLayout

NAME, X = "AITER_PA_ASM", 8  # 16 bytes of bf16/fp16
NAME_8BIT, X_8BIT = "AITER_PA_ASM_8BIT", 16  # 16 bytes of fp8
PACKS = {NAME: X, NAME_8BIT: X_8BIT}


def _layout(name: str, x: int) -> KVLayout:
    def k_shape(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
        return (n, h, d // x, b, x)

    def v_shape(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
        return (n, h, b // x, d, x)

    def from_nhd(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, b, h, d = k.shape
        keys = k.reshape(n, b, h, d // x, x).permute(0, 2, 3, 1, 4).contiguous()
        values = v.reshape(n, b // x, x, h, d).permute(0, 3, 1, 4, 2).contiguous()
        return keys, values

    def to_nhd(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # always a copy: with one pack per block (block_size == x) the permuted values would otherwise be a
        # view of the cache, and the kit writes the NHD result back into the cache it came from
        n, h, dx, b, xx = k.shape
        keys = k.permute(0, 3, 1, 2, 4).clone(memory_format=torch.contiguous_format).view(n, b, h, dx * xx)
        values = v.permute(0, 2, 4, 1, 3).clone(memory_format=torch.contiguous_format).view(n, b, h, dx * xx)
        return keys, values

    return KVLayout(name, k_shape, v_shape, from_nhd, to_nhd)


PA_ASM = _layout(NAME, X)
PA_ASM_8BIT = _layout(NAME_8BIT, X_8BIT)
