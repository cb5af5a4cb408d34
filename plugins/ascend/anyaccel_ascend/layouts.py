"""The 310P's NZ ("fractal") KV-cache layout, registered through the anyaccel_kv_layouts hook.

Each of the key and value caches is [num_blocks, Hkv, D/16, block_size, 16]: token slot s of a block, head h,
channel d sits at [block, h, d // 16, s, d % 16]. Its free view [num_blocks, Hkv*D/16, block_size, 16] is the
cache the ATB operations read and write on the 310P (vllm-ascend _310p attention; torch_npu's PagedAttention
doc), and the 5-D form is the NZ shape torch_npu's attention docs write as [blockNum, KV_N, D/16, blockSize,
16]; keeping the head dim separate lets the layout be converted back without knowing Hkv. Converters to and
from NHD let the conformance kit run its NHD attention cases in this layout.
"""

from __future__ import annotations

import torch

from anyaccel.ops.kv_cache import KVLayout

NAME = "ASCEND_NZ"
LAST = 16  # 16 float16 values: one 32-byte fractal row


def _shape(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
    return (n, h, d // LAST, b, LAST)


def to_nz(cache: torch.Tensor) -> torch.Tensor:
    """[N, bs, H, D] -> [N, H, D/16, bs, 16] (a copy)."""
    n, b, h, d = cache.shape
    return cache.reshape(n, b, h, d // LAST, LAST).permute(0, 2, 3, 1, 4).contiguous()


def to_nhd(cache: torch.Tensor) -> torch.Tensor:
    """[N, H, D/16, bs, 16] -> [N, bs, H, D] (a copy)."""
    n, h, cols, b, _ = cache.shape
    return cache.permute(0, 3, 1, 2, 4).reshape(n, b, h, cols * LAST).contiguous()


def flat(cache: torch.Tensor) -> torch.Tensor:
    """The [N, H*D/16, bs, 16] view the ATB operations take (no copy)."""
    return cache.flatten(1, 2)


NZ = KVLayout(
    NAME,
    _shape,
    _shape,
    from_nhd=lambda k, v: (to_nz(k), to_nz(v)),
    to_nhd=lambda k, v: (to_nhd(k), to_nhd(v)),
)
