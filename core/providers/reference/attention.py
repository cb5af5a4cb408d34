"""Torch reference for attention.prefill, attention.decode and attention.write_kv (contracts in
anyaccel.ops.attention).

The three targets are factories: the call alone cannot tell an NHD cache from an HND one (the shapes agree
when block_size == Hkv), so each binding gets the functions specialised for spec.kv_layout. Every layout reads
the cache through its zero-copy [num_blocks, block_size, Hkv, D] view.

All scores, softmax and P@V are computed in fp32 and vectorised: decode over the whole batch at once,
prefill one sequence at a time in tiles of query rows (bounded memory for long prompts). Keys and values are
handled head-major, [Hkv, B, L, D]: one index_select gathers every sequence's pages and one copy puts just
those pages into that layout; both products are then batched matmuls over (head, sequence) with no further
copy of K or V.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import torch

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import as_nhd, check_pages
from anyaccel.platforms.base import Platform

QUERY_TILE = 1024  # prefill query rows scored at once: a [Hq, 1024, L] fp32 score tile


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_pos: torch.Tensor,
    kv_len: torch.Tensor,
    scale: float,
    causal: bool,
    window: int,
    softcap: float,
    sinks: torch.Tensor | None,
) -> torch.Tensor:
    """q [B, M, Hq, D], k/v [Hkv, B, L, D] (fp32, head-major); q_pos [B, M] absolute query positions; kv_len
    [B] keys that exist (position j of row b is a key iff j < kv_len[b]). Returns [B, M, Hq, D] fp32; a row
    that sees no key returns zeros."""
    b, m, hq, d = q.shape
    hkv, length = k.shape[0], k.shape[2]
    g = hq // hkv
    if length == 0:  # no sequence has a key (all decode rows padded)
        return q.new_zeros(q.shape)
    qh = q.view(b, m, hkv, g, d).permute(2, 0, 3, 1, 4).reshape(hkv, b, g * m, d)
    s = (torch.matmul(qh, k.transpose(-1, -2)) * scale).view(hkv, b, g, m, length)
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    j = torch.arange(length, device=q.device)
    qp = q_pos[None, :, None, :, None]
    visible = j < kv_len[None, :, None, None, None]
    if causal:
        visible = visible & (j <= qp)
    if window > 0:
        visible = visible & (j > qp - window)
    s = s.masked_fill(~visible, float("-inf"))
    row_max = s.amax(-1, keepdim=True)
    if sinks is not None:
        sink = sinks.float().view(hkv, 1, g, 1, 1)
        row_max = torch.maximum(row_max, sink)
    row_max = row_max.nan_to_num(0.0, neginf=0.0)  # rows with no key and no sink: keep exp() finite
    p = torch.exp(s - row_max)
    denom = p.sum(-1, keepdim=True)
    if sinks is not None:
        denom = denom + torch.exp(sink - row_max)
    out = torch.matmul(p.view(hkv, b, g * m, length), v).view(hkv, b, g, m, d)
    out = torch.where(denom > 0, out / denom.clamp_min(torch.finfo(torch.float32).tiny), 0.0)
    return out.permute(1, 3, 0, 2, 4).reshape(b, m, hq, d)


def _dequant(x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    return x.float() * scale if scale is not None else x.float()


def _gather_pages(
    cache: torch.Tensor, block_tables: torch.Tensor, num_blocks: int, scale: torch.Tensor | None
) -> torch.Tensor:
    """[Hkv, B, num_blocks * block_size, D] fp32: the first num_blocks pages of each sequence, in order, from
    a [num_blocks, block_size, Hkv, D] cache view. Table entries past a sequence's last page may be anything
    (-1): they are read as page 0 and masked (the callers have checked the entries a sequence uses with
    check_pages)."""
    table = block_tables[:, :num_blocks].long()
    table = table.where(table >= 0, 0).clamp_max(cache.shape[0] - 1)
    b, n = table.shape
    _, block_size, hkv, d = cache.shape
    # whole pages first (index_select on a permuted view would copy the entire cache), then one small copy
    # of just those pages into head-major order
    pages = cache.index_select(0, table.flatten()).permute(2, 0, 1, 3)  # [Hkv, B * n, bs, D]
    return _dequant(pages.reshape(hkv, b, n * block_size, d), scale)


def _pages_for(length: int, block_size: int, max_blocks: int) -> int:
    return min(max_blocks, -(-length // block_size))


def _decode_for(layout: str) -> Callable[..., torch.Tensor]:
    def decode(
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
        kc, vc = as_nhd(k_cache, layout), as_nhd(v_cache, layout)
        check_pages("attention.decode", block_tables, seq_lens, kc.shape[1], kc.shape[0], max_seq_len)
        n = _pages_for(max_seq_len, kc.shape[1], block_tables.shape[1])
        k = _gather_pages(kc, block_tables, n, k_scale)
        v = _gather_pages(vc, block_tables, n, v_scale)
        lens = seq_lens.long()
        # the pages hold slots the query does not see (past its length, page 0 behind unused table entries,
        # before its window): zeroed by selection, so a NaN another request left there cannot reach this
        # output through p = 0 times NaN (the scores there are masked by selection in _attend)
        j = torch.arange(k.shape[2], device=q.device)
        hidden = (j >= lens[:, None]) | (j < lens[:, None] - sliding_window if sliding_window > 0 else False)
        k, v = k.masked_fill_(hidden[None, :, :, None], 0.0), v.masked_fill_(hidden[None, :, :, None], 0.0)
        out = _attend(
            q.float().unsqueeze(1),
            k,
            v,
            (lens - 1).unsqueeze(1),
            lens,
            scale,
            True,
            sliding_window,
            softcap,
            sinks,
        )
        return out.squeeze(1).to(q.dtype)

    return decode


def _prefill_for(layout: str) -> Callable[..., torch.Tensor]:
    def prefill(
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
        kc, vc = as_nhd(k_cache, layout), as_nhd(v_cache, layout)
        check_pages("attention.prefill", block_tables, seq_lens, kc.shape[1], kc.shape[0], max_seq_len)
        out = torch.empty_like(q)
        bounds = cu_seqlens_q.tolist()
        totals = seq_lens.tolist()
        for b, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            cached = totals[b] - (end - start)
            keys = k[start:end].float().transpose(0, 1).unsqueeze(1)  # [Hkv, 1, new, D]
            values = v[start:end].float().transpose(0, 1).unsqueeze(1)
            if cached > 0:
                n = _pages_for(cached, kc.shape[1], block_tables.shape[1])
                table = block_tables[b : b + 1]
                keys = torch.cat((_gather_pages(kc, table, n, k_scale)[:, :, :cached], keys), dim=2)
                values = torch.cat((_gather_pages(vc, table, n, v_scale)[:, :, :cached], values), dim=2)
            for lo in range(start, end, QUERY_TILE):
                hi = min(lo + QUERY_TILE, end)
                first, last = cached + lo - start, cached + hi - start  # positions of the tile's queries
                # keys no query of the tile can see are left out: after the last (causal), before the window
                k_hi = last if causal else totals[b]
                k_lo = max(0, first - sliding_window + 1) if sliding_window > 0 else 0
                pos = torch.arange(first - k_lo, last - k_lo, device=q.device).unsqueeze(0)
                length = torch.tensor([k_hi - k_lo], device=q.device)
                tile = _attend(
                    q[lo:hi].float().unsqueeze(0),
                    keys[:, :, k_lo:k_hi],
                    values[:, :, k_lo:k_hi],
                    pos,
                    length,
                    scale,
                    causal,
                    sliding_window,
                    softcap,
                    sinks,
                )
                out[lo:hi] = tile[0].to(q.dtype)
        return out

    return prefill


def _quantize(x: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """x / scale rounded to `dtype`, saturated to its finite range (fp8); a plain cast otherwise."""
    if scale is None:
        return x.to(dtype)
    bound = torch.finfo(dtype).max
    return (x.float() / scale).clamp(-bound, bound).to(dtype)


def _write_kv_for(layout: str) -> Callable[..., None]:
    def write_kv(
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
        for src, cache_, scale in ((k, k_cache, k_scale), (v, v_cache, v_scale)):
            view = as_nhd(cache_, layout)
            block_size = view.shape[1]
            values = _quantize(src[keep], scale, cache_.dtype)
            # index_put has no fp8 kernels: store the bytes through a same-width integer view
            raw = view.view(torch.uint8) if cache_.element_size() == 1 else view
            raw[slots // block_size, slots % block_size] = values.view(raw.dtype)

    return write_kv


@cache
def _specialised(op: str, layout: str) -> Callable[..., Any]:
    """One function per (op, layout), so every binding for a layout shares it (and its compiled custom op)."""
    return {"prefill": _prefill_for, "decode": _decode_for, "write_kv": _write_kv_for}[op](layout)


def prefill(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    return _specialised("prefill", spec.kv_layout)


def decode(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    return _specialised("decode", spec.kv_layout)


def write_kv(spec: AttentionSpec, platform: Platform) -> Callable[..., None]:
    return _specialised("write_kv", spec.kv_layout)
