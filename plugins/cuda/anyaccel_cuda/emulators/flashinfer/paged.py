"""What FlashInfer's paged-attention entry points share: the (k_cache, v_cache) tuple, the CSR page
description (indptr, indices, last_page_len) and the dtypes its kernels are instantiated for."""

from __future__ import annotations

import torch

from ..errors import require

LAYOUTS = ("NHD", "HND")
# data/include/flashinfer/utils.cuh DISPATCH_HEAD_DIM: the head dims the paged kernels are built for
HEAD_DIMS = (64, 128, 256, 512)
Q_DTYPES = (torch.float16, torch.bfloat16)
KV_DTYPES = (torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)
_NAMES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float8_e4m3fn": torch.float8_e4m3fn}


def as_dtype(value: str | torch.dtype | None, default: torch.dtype | None = None) -> torch.dtype | None:
    """FlashInfer takes dtypes as torch dtypes or their names."""
    if value is None:
        return default
    if isinstance(value, str):
        require(value in _NAMES, f"unsupported data type {value!r}")
        return _NAMES[value]
    return value


def split_cache(paged_kv_cache, kv_layout: str) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
    """(k_cache, v_cache, page_size, num_kv_heads, head_dim) of a (k, v) tuple in kv_layout."""
    require(kv_layout in LAYOUTS, f"Invalid kv_layout {kv_layout}")
    if isinstance(paged_kv_cache, torch.Tensor):
        raise NotImplementedError("the single 5-D paged_kv_cache tensor is not emulated; pass (k, v)")
    k, v = paged_kv_cache
    require(k.dim() == 4 and k.shape == v.shape, f"k/v cache must be 4-D and alike, got {k.shape}, {v.shape}")
    require(k.dtype == v.dtype, f"k/v cache dtypes differ: {k.dtype}, {v.dtype}")
    require(k.stride(-1) == 1 and v.stride(-1) == 1, "the head_dim of the kv cache must be contiguous")
    if kv_layout == "NHD":
        _, page_size, heads, dim = k.shape
    else:
        _, heads, page_size, dim = k.shape
    return k, v, page_size, heads, dim


def check_csr(
    indptr: torch.Tensor, indices: torch.Tensor, last_page_len: torch.Tensor, page_size: int
) -> int:
    """The batch size; raises for what FlashInfer's plan rejects."""
    for name, t in (("indptr", indptr), ("indices", indices), ("last_page_len", last_page_len)):
        require(t.dtype == torch.int32 and t.dim() == 1, f"{name} must be a 1-D int32 tensor, got {t.dtype}")
    batch = indptr.numel() - 1
    require(batch >= 0 and last_page_len.numel() == batch, "last_page_len must have batch_size entries")
    require(
        int(indptr[0]) == 0 and bool((indptr.diff() >= 0).all()), "indptr must start at 0 and not decrease"
    )
    require(int(indptr[-1]) <= indices.numel(), "indptr[-1] exceeds the number of page indices")
    pages = indptr.diff()
    ok = torch.where(pages > 0, (last_page_len >= 1) & (last_page_len <= page_size), last_page_len == 0)
    require(
        bool(ok.all()), f"last_page_len must be in [1, {page_size}] for non-empty requests, 0 for empty ones"
    )
    return batch


def sequence_lengths(indptr: torch.Tensor, last_page_len: torch.Tensor, page_size: int) -> torch.Tensor:
    pages = indptr.diff()
    return torch.where(pages > 0, (pages - 1) * page_size + last_page_len, torch.zeros_like(pages))
