"""Paged KV-cache layouts. The layout is part of the attention contract: the selected decode kernel declares
the layout it reads (Kernel.kv_layout), the cache is allocated in it once, and write_kv/prefill are bound
for the same layout, so no call ever converts a cache.

A block of `block_size` token slots holds the keys (and, in a second tensor, the values) of consecutive
positions of one sequence; block_tables map (sequence, position // block_size) to a block index and
slot = block * block_size + position % block_size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KVLayout:
    """name:    "NHD", "HND" or a vendor layout a plugin registers
    k_shape: (num_blocks, block_size, num_kv_heads, head_dim) -> shape of the key cache
    v_shape: same for the value cache
    from_nhd: optional (k_nhd, v_nhd) -> (k, v): the same tokens copied from NHD caches
              [num_blocks, block_size, Hkv, D] into this layout; with `to_nhd`, its inverse, the
              conformance kit re-lays its NHD attention cases out in this layout (nothing else converts)
    """

    name: str
    k_shape: Callable[[int, int, int, int], tuple[int, ...]]
    v_shape: Callable[[int, int, int, int], tuple[int, ...]]
    from_nhd: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    to_nhd: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def allocate(
        self,
        num_blocks: int,
        block_size: int,
        num_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        args = (num_blocks, block_size, num_kv_heads, head_dim)
        return (
            torch.zeros(self.k_shape(*args), dtype=dtype, device=device),
            torch.zeros(self.v_shape(*args), dtype=dtype, device=device),
        )


def _nhd(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
    return (n, b, h, d)


def _hnd(n: int, b: int, h: int, d: int) -> tuple[int, ...]:
    return (n, h, b, d)


# [num_blocks, block_size, Hkv, D]: vLLM/FlashAttention(-4) pages, FlashInfer and AITER "NHD"; Ascend's
# BnBsH [num_blocks, block_size, Hkv * D] is a free view of it.
NHD = KVLayout("NHD", _nhd, _nhd)
# [num_blocks, Hkv, block_size, D]: FlashInfer and AITER "HND", trtllm-gen (Blackwell), Ascend's BnNBsD.
HND = KVLayout("HND", _hnd, _hnd)

# Built-in layouts that have a zero-copy [num_blocks, block_size, Hkv, D] view (see as_nhd).
NHD_VIEWABLE = ("NHD", "HND")

BUILTIN_LAYOUTS: dict[str, KVLayout] = {"NHD": NHD, "HND": HND}


def layouts() -> dict[str, KVLayout]:
    """Every layout known in this process: the built-ins and those plugins register through the
    `anyaccel_kv_layouts` hook (forgotten by `anyaccel.reset()`)."""
    from anyaccel import context

    return context.get().kv_layouts


def layout(name: str) -> KVLayout:
    known = layouts()
    try:
        return known[name]
    except KeyError:
        raise ValueError(f"unknown KV-cache layout {name!r}; known: {', '.join(known)}") from None


def as_nhd(cache: torch.Tensor, layout_name: str) -> torch.Tensor:
    """A [num_blocks, block_size, Hkv, D] view of a cache in a layout of NHD_VIEWABLE (no copy)."""
    if layout_name == "NHD":
        return cache
    if layout_name == "HND":
        return cache.transpose(1, 2)
    raise ValueError(f"no NHD view of KV layout {layout_name!r}")


def check_pages(
    op: str,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    block_size: int,
    num_blocks: int,
    max_seq_len: int | None = None,
) -> None:
    """Raises ContractError unless every sequence fits its table (0 <= seq_lens[b] <= max_blocks * block_size,
    and <= max_seq_len when given) and the ceil(seq_lens[b] / block_size) table entries it uses name blocks
    of the cache, [0, num_blocks); entries past a sequence's last page are ignored (may be -1). Compared in
    the tensors' own widths; a few small reductions and one host read."""
    from .base import expect_range

    width = block_tables.shape[1]
    top = width * block_size if max_seq_len is None else min(width * block_size, max_seq_len)
    used = (
        torch.arange(width, device=block_tables.device) < (seq_lens[:, None] + block_size - 1) // block_size
    )
    outside = used & ((block_tables < 0) | (block_tables >= num_blocks))
    # one host read when all is well (decode kernels call this on every step); details only on failure
    if not bool(outside.any() | ((seq_lens < 0) | (seq_lens > top)).any()):
        return
    limit = f"(at most {width} blocks of {block_size}" + (
        ")" if max_seq_len is None else f" and max_seq_len {max_seq_len})"
    )
    expect_range(op, "seq_lens", seq_lens, 0, top + 1, limit)
    expect_range(
        op, "block_tables", block_tables[used], 0, num_blocks, f"(the cache has {num_blocks} blocks)"
    )
