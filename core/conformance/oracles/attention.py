"""Oracles for attention.*: one sequence, one head, one query at a time, in float64, reading the paged cache
page by page through the block table. The cache layout is a parameter (bound with functools.partial by the
cases), because the call alone cannot tell NHD from HND."""

from __future__ import annotations

import math

import torch


def _slot(cache: torch.Tensor, layout: str, block: int, offset: int) -> torch.Tensor:
    """[Hkv, D] float64: the token stored at (block, offset)."""
    if layout == "NHD":  # [num_blocks, block_size, Hkv, D]
        return cache[block, offset].double()
    if layout == "HND":  # [num_blocks, Hkv, block_size, D]
        return cache[block, :, offset].double()
    raise ValueError(f"attention oracle: unknown KV layout {layout!r}")


def _block_size(cache: torch.Tensor, layout: str) -> int:
    return cache.shape[1] if layout == "NHD" else cache.shape[2]


def _history(
    cache: torch.Tensor, layout: str, table: torch.Tensor, length: int, scale: torch.Tensor | None
) -> torch.Tensor:
    """[length, Hkv, D] float64: the first `length` tokens of one sequence, read one by one, dequantized."""
    block_size = _block_size(cache, layout)
    factor = 1.0 if scale is None else float(scale[0])
    heads, dim = cache.shape[-2:] if layout == "NHD" else (cache.shape[1], cache.shape[3])
    tokens = torch.zeros(length, heads, dim, dtype=torch.float64)
    for position in range(length):
        block = int(table[position // block_size])
        tokens[position] = _slot(cache, layout, block, position % block_size) * factor
    return tokens


def _visible(length: int, position: int, causal: bool, window: int) -> torch.Tensor:
    """[length] bool: which key positions a query at `position` sees."""
    positions = torch.arange(length)
    visible = torch.ones(length, dtype=torch.bool)
    if causal:
        visible &= positions <= position
    if window > 0:
        visible &= positions > position - window
    return visible


def _one_query(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    visible: torch.Tensor,
    sink: float | None,
    scale: float,
    softcap: float,
) -> torch.Tensor:
    """Attention of one query q [D] over one head's keys/values [L, D] (all float64) restricted to `visible`:
    softmax over the visible logits plus the optional sink logit, written out step by step."""
    logits = (keys @ q) * scale
    if softcap > 0:
        logits = softcap * torch.tanh(logits / softcap)
    logits = logits.masked_fill(~visible, -math.inf)
    candidates = [float(logits.max())] if keys.shape[0] else []
    if sink is not None:
        candidates.append(sink)
    top = max(candidates, default=-math.inf)
    if top == -math.inf:  # nothing visible and no sink
        return torch.zeros_like(q)
    weights = torch.exp(logits - top)
    total = float(weights.sum()) + (math.exp(sink - top) if sink is not None else 0.0)
    return (weights / total) @ values


def decode(
    layout: str,
    q,
    k_cache,
    v_cache,
    block_tables,
    seq_lens,
    max_seq_len,
    scale,
    sliding_window=-1,
    softcap=0.0,
    sinks=None,
    k_scale=None,
    v_scale=None,
) -> torch.Tensor:
    batch, num_heads, head_dim = q.shape
    group = num_heads // (k_cache.shape[2] if layout == "NHD" else k_cache.shape[1])
    out = torch.zeros(batch, num_heads, head_dim, dtype=torch.float64)
    for b in range(batch):
        length = int(seq_lens[b])
        keys = _history(k_cache, layout, block_tables[b], length, k_scale)
        values = _history(v_cache, layout, block_tables[b], length, v_scale)
        visible = _visible(length, length - 1, True, sliding_window)
        for h in range(num_heads):
            sink = None if sinks is None else float(sinks[h])
            out[b, h] = _one_query(
                q[b, h].double(), keys[:, h // group], values[:, h // group], visible, sink, scale, softcap
            )
    return out


def prefill(
    layout: str,
    q,
    k,
    v,
    k_cache,
    v_cache,
    block_tables,
    cu_seqlens_q,
    seq_lens,
    max_seqlen_q,
    max_seq_len,
    scale,
    causal=True,
    sliding_window=-1,
    softcap=0.0,
    sinks=None,
    k_scale=None,
    v_scale=None,
) -> torch.Tensor:
    num_heads = q.shape[1]
    group = num_heads // k.shape[1]
    out = torch.zeros(q.shape, dtype=torch.float64)
    for b in range(cu_seqlens_q.numel() - 1):
        start, end = int(cu_seqlens_q[b]), int(cu_seqlens_q[b + 1])
        cached = int(seq_lens[b]) - (end - start)
        keys = _history(k_cache, layout, block_tables[b], cached, k_scale)
        values = _history(v_cache, layout, block_tables[b], cached, v_scale)
        keys = torch.cat((keys, k[start:end].double()))
        values = torch.cat((values, v[start:end].double()))
        for t in range(start, end):
            visible = _visible(keys.shape[0], cached + t - start, causal, sliding_window)
            for h in range(num_heads):
                sink = None if sinks is None else float(sinks[h])
                out[t, h] = _one_query(
                    q[t, h].double(),
                    keys[:, h // group],
                    values[:, h // group],
                    visible,
                    sink,
                    scale,
                    softcap,
                )
    return out


def write_kv(layout: str, k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None) -> None:
    block_size = _block_size(k_cache, layout)
    for src, cache, scale in ((k, k_cache, k_scale), (v, v_cache, v_scale)):
        for t in range(src.shape[0]):
            slot = int(slot_mapping[t])
            if slot < 0:
                continue
            value = src[t].double()
            if scale is not None:
                limit = torch.finfo(cache.dtype).max
                value = (value / float(scale[0])).clamp(-limit, limit)
            block, offset = divmod(slot, block_size)
            if layout == "NHD":
                cache[block, offset] = value.to(cache.dtype)
            else:
                cache[block, :, offset] = value.to(cache.dtype)
