"""Torch-facing attention kernels (contracts in anyaccel.ops.attention) on anyaccel_mlx.ops.attention.

Factories: each binding is specialised for spec.kv_layout (NHD and HND shapes agree when block_size == Hkv).
Importing torch memory into MLX copies it (convert.py), so a call never copies the whole cache: the pages the
batch reads are gathered on the torch side first, and only they cross, renumbered 0..n-1. The cache itself
stays a torch tensor; write_kv lets MLX produce the stored values (cast, or fp8 quantization with
saturation) and writes them into the torch cache in place.
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import torch

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import as_nhd
from anyaccel.platforms.base import Platform

from ..convert import FP8_E4M3, maybe_resident, mx_dtype, to_mx, to_torch
from ..ops import attention


def _bytes(cache: torch.Tensor) -> torch.Tensor:
    """fp8 caches are indexed through their uint8 view (torch has no fp8 index kernels on the CPU)."""
    return cache.view(torch.uint8) if cache.dtype == FP8_E4M3 else cache


def _read_pages(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    lens: torch.Tensor,
    max_len: int,
    layout: str,
) -> tuple[mx.array, mx.array, mx.array]:
    """The pages holding the first lens[b] tokens of each sequence (NHD MLX arrays) and a table to them."""
    kc, vc = as_nhd(k_cache, layout), as_nhd(v_cache, layout)
    block_size = kc.shape[1]
    n = attention.pages_for(max(max_len, 1), block_size, block_tables.shape[1])
    needed = (lens.long() + block_size - 1) // block_size
    used = torch.arange(n, device=block_tables.device) < needed[:, None]
    table = torch.where(used, block_tables[:, :n].long(), 0).flatten()
    renumbered = torch.arange(table.numel(), dtype=torch.int32).view(-1, n)
    return to_mx(_bytes(kc)[table]), to_mx(_bytes(vc)[table]), to_mx(renumbered)


def decode(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    def mlx_decode(
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        seq_lens: torch.Tensor,
        max_seq_len: int,
        scale: float,
        sliding_window: int = -1,
        softcap: float = 0.0,
        sinks: torch.Tensor | None = None,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        keys, values, table = _read_pages(
            k_cache, v_cache, block_tables, seq_lens, max_seq_len, spec.kv_layout
        )
        out = attention.decode(
            to_mx(q),
            keys,
            values,
            table,
            to_mx(seq_lens),
            max_seq_len,
            scale,
            sliding_window,
            maybe_resident(sinks),
            maybe_resident(k_scale),
            maybe_resident(v_scale),
            layout="NHD",
        )
        return to_torch(out, q.device)

    return mlx_decode


def prefill(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    def mlx_prefill(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        cu_seqlens_q: torch.Tensor,
        seq_lens: torch.Tensor,
        max_seqlen_q: int,
        max_seq_len: int,
        scale: float,
        causal: bool = True,
        sliding_window: int = -1,
        softcap: float = 0.0,
        sinks: torch.Tensor | None = None,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cached = seq_lens - cu_seqlens_q.diff()
        keys, values, table = _read_pages(k_cache, v_cache, block_tables, cached, max_seq_len, spec.kv_layout)
        out = attention.prefill(
            to_mx(q),
            to_mx(k),
            to_mx(v),
            keys,
            values,
            table,
            to_mx(cu_seqlens_q),
            to_mx(seq_lens),
            scale,
            causal,
            sliding_window,
            maybe_resident(sinks),
            maybe_resident(k_scale),
            maybe_resident(v_scale),
            layout="NHD",
        )
        return to_torch(out, q.device)

    return mlx_prefill


def write_kv(spec: AttentionSpec, platform: Platform) -> Callable[..., None]:
    def mlx_write_kv(
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> None:
        keep = slot_mapping >= 0
        slots = slot_mapping[keep]
        for src, cache, scale in ((k, k_cache, k_scale), (v, v_cache, v_scale)):
            view = _bytes(as_nhd(cache, spec.kv_layout))
            dtype = mx.uint8 if cache.dtype == FP8_E4M3 else mx_dtype(cache.dtype)
            stored = attention.store_values(to_mx(src[keep]), maybe_resident(scale), dtype)
            view[slots // view.shape[1], slots % view.shape[1]] = to_torch(stored, cache.device)

    return mlx_write_kv
