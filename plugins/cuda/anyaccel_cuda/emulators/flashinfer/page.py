"""Emulator of flashinfer.page.append_paged_kv_cache (flashinfer-python 0.7.4).

Entry i of append_key/append_value goes to request batch_indices[i] at position positions[i]: page
kv_indices[kv_indptr[b] + pos // page_size], slot pos % page_size. Keys are stored as given: the cache
dtype must be the keys' (fp8 caches are quantized by the caller)."""

from __future__ import annotations

import torch

from ..errors import require
from .paged import split_cache


def append_paged_kv_cache(
    append_key: torch.Tensor,
    append_value: torch.Tensor,
    batch_indices: torch.Tensor,
    positions: torch.Tensor,
    paged_kv_cache,
    kv_indices: torch.Tensor,
    kv_indptr: torch.Tensor,
    kv_last_page_len: torch.Tensor,
    kv_layout: str = "NHD",
) -> None:
    k_cache, v_cache, page_size, heads, dim = split_cache(paged_kv_cache, kv_layout)
    tokens = append_key.shape[0]
    require(append_key.shape == (tokens, heads, dim) == append_value.shape, "append_key/value: [nnz, Hkv, D]")
    require(
        append_key.dtype == k_cache.dtype == append_value.dtype, "append_key/value must be in the cache dtype"
    )
    for name, t in (("batch_indices", batch_indices), ("positions", positions)):
        require(t.dtype == torch.int32 and t.shape == (tokens,), f"{name} must be int32 [nnz]")
    for name, t in (
        ("kv_indices", kv_indices),
        ("kv_indptr", kv_indptr),
        ("kv_last_page_len", kv_last_page_len),
    ):
        require(t.dtype == torch.int32 and t.dim() == 1, f"{name} must be a 1-D int32 tensor")
    batch = kv_indptr.numel() - 1
    require(kv_last_page_len.numel() == batch, "kv_last_page_len must have batch_size entries")
    if tokens == 0:
        return
    b = batch_indices.long()
    require(bool(((b >= 0) & (b < batch)).all()), "batch_indices out of range")
    pos = positions.long()
    entry = kv_indptr.long()[b] + pos // page_size
    require(bool((entry < kv_indptr.long()[b + 1]).all()), "a position lies past its request's pages")
    page, slot = kv_indices.long()[entry], pos % page_size
    if kv_layout == "NHD":
        k_cache[page, slot] = append_key
        v_cache[page, slot] = append_value
    else:
        k_cache[page, :, slot] = append_key
        v_cache[page, :, slot] = append_value
