"""aiter.ops.shuffle.shuffle_weight: the (16, 16) tile permutation AITER's MoE and preshuffled GEMM kernels
read, reproduced exactly (same view and permutation), and its inverse, which the emulated kernels apply to
compute. Signature as ROCm/aiter e404860 aiter/ops/shuffle.py."""

from __future__ import annotations

import torch


def _tiles(shape: torch.Size, elem_size: int, layout: tuple[int, int]) -> tuple[int, ...]:
    """The [-1, N/BN, BN, K/BK, BK/K, K] view shuffle_weight permutes (K = 16 bytes of elements)."""
    n_lane, k_lane = layout
    bk, bn, kpack = k_lane * 2, n_lane, 16 // elem_size
    assert shape[-2] % bn == 0, f"{shape[-2]} % {bn} == {shape[-2] % bn}"
    assert shape[-1] % bk == 0, f"{shape[-1]} % {bk} == {shape[-1] % bk}"
    return (-1, shape[-2] // bn, bn, shape[-1] // bk, bk // kpack, kpack)


def shuffle_weight(
    x: torch.Tensor,
    layout=(16, 16),
    use_int4=False,
    is_guinterleave=False,
    gate_up: bool = False,
    pad_k_to: int = 0,
) -> torch.Tensor:
    """[..., N, K] -> the same shape, 16x16 tiles of 16-byte K packs reordered; marks `is_shuffled`."""
    if use_int4 or is_guinterleave or pad_k_to:
        raise NotImplementedError("emulated shuffle_weight: only the plain (16, 16) byte-pack layout")
    view = _tiles(x.shape, x.element_size(), layout)
    out = x.view(view).permute(0, 1, 3, 4, 2, 5).contiguous().view(x.shape)
    out.is_shuffled = True  # type: ignore[attr-defined]
    return out


def unshuffle_weight(x: torch.Tensor, layout=(16, 16)) -> torch.Tensor:
    """The inverse permutation: what the kernels see after reading their tiles (emulator only)."""
    d = _tiles(x.shape, x.element_size(), layout)
    shuffled = x.reshape(-1, d[1], d[3], d[4], d[2], d[5])
    return shuffled.permute(0, 1, 4, 2, 3, 5).contiguous().view(x.shape)
