"""attention.prefill / decode / write_kv on mx.fast.scaled_dot_product_attention.

MLX attention is contiguous and BHSD ([B, H, L, D]) with no paged cache, no window and no soft-cap
argument. So the pages a batch reads are gathered into contiguous keys, windows and padding become boolean
masks, GQA goes straight through (SDPA takes Hkv < Hq untiled), and sinks map to SDPA's `sinks`. Soft-capping
has no MLX equivalent and is rejected when binding (kernels/__init__.py).

Caches arrive in a built-in layout (NHD or HND) and are read through their [blocks, block_size, Hkv, D]
arrangement; fp8 caches are e4m3fn bytes in uint8 arrays (see convert.py), dequantized with mx.from_fp8.
"""

from __future__ import annotations

import mlx.core as mx


def as_nhd(cache: mx.array, layout: str) -> mx.array:
    """[blocks, block_size, Hkv, D] arrangement of a cache in `layout` (a transpose for HND)."""
    return cache if layout == "NHD" else cache.swapaxes(1, 2)


def from_nhd(cache: mx.array, layout: str) -> mx.array:
    return cache if layout == "NHD" else cache.swapaxes(1, 2)


def dequant(x: mx.array, scale: mx.array | None, dtype: mx.Dtype) -> mx.array:
    """Cache values in the compute dtype: fp8 bytes times their scale, or the values as they are."""
    if scale is None:
        return x.astype(dtype)
    return (mx.from_fp8(x, mx.float32) * scale).astype(dtype)


def gather_pages(cache: mx.array, tables: mx.array, num_pages: int) -> mx.array:
    """[B, num_pages * block_size, Hkv, D]: the first num_pages pages of every sequence, in order. Table
    entries past a sequence's last page may be anything (-1): they read page 0, and the mask hides them."""
    table = tables[:, :num_pages]
    table = mx.minimum(mx.where(table >= 0, table, 0), cache.shape[0] - 1)
    pages = cache[table]  # [B, n, block_size, Hkv, D]
    return pages.reshape(pages.shape[0], -1, *pages.shape[3:])


def pages_for(length: int, block_size: int, max_pages: int) -> int:
    return min(max_pages, -(-length // block_size))


def _bhsd(x: mx.array) -> mx.array:
    """[B, L, H, D] -> [B, H, L, D]."""
    return x.transpose(0, 2, 1, 3)


def decode(
    q: mx.array,
    k_cache: mx.array,
    v_cache: mx.array,
    block_tables: mx.array,
    seq_lens: mx.array,
    max_seq_len: int,
    scale: float,
    sliding_window: int = -1,
    sinks: mx.array | None = None,
    k_scale: mx.array | None = None,
    v_scale: mx.array | None = None,
    *,
    layout: str,
) -> mx.array:
    """q [B, Hq, D] -> [B, Hq, D]; the query sits at position seq_lens[b] - 1; empty sequences give zeros."""
    kc, vc = as_nhd(k_cache, layout), as_nhd(v_cache, layout)
    n = pages_for(max_seq_len, kc.shape[1], block_tables.shape[1])
    keys = dequant(gather_pages(kc, block_tables, n), k_scale, q.dtype)
    values = dequant(gather_pages(vc, block_tables, n), v_scale, q.dtype)
    lens = seq_lens.astype(mx.int32)[:, None]
    j = mx.arange(keys.shape[1])[None, :]
    visible = j < lens
    if sliding_window > 0:
        visible = visible & (j > lens - 1 - sliding_window)
    out = mx.fast.scaled_dot_product_attention(
        q[:, :, None, :],
        _bhsd(keys),
        _bhsd(values),
        scale=scale,
        mask=visible[:, None, None, :],
        sinks=None if sinks is None else sinks.astype(q.dtype),
    )
    return mx.where(lens[:, :, None] > 0, out[:, :, 0, :], 0).astype(q.dtype)


def _prefill_mask(new: int, total: int, causal: bool, window: int) -> mx.array | str | None:
    """Mask of `new` queries (at positions total-new ..) over `total` keys. "causal" is SDPA's own
    bottom-right aligned mask, exactly the contract's causal rule when the new tokens end the sequence."""
    if not causal:
        return None
    if window <= 0:
        return "causal"
    pos = mx.arange(total - new, total)[:, None]
    j = mx.arange(total)[None, :]
    return (j <= pos) & (j > pos - window)


def prefill(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    k_cache: mx.array,
    v_cache: mx.array,
    block_tables: mx.array,
    cu_seqlens_q: mx.array,
    seq_lens: mx.array,
    scale: float,
    causal: bool = True,
    sliding_window: int = -1,
    sinks: mx.array | None = None,
    k_scale: mx.array | None = None,
    v_scale: mx.array | None = None,
    *,
    layout: str,
) -> mx.array:
    """One SDPA call per sequence (its lengths are read on the host): the cached prefix comes from the
    pages, the new tokens from k/v. q [T, Hq, D] -> [T, Hq, D]."""
    kc, vc = as_nhd(k_cache, layout), as_nhd(v_cache, layout)
    bounds, totals = cu_seqlens_q.tolist(), seq_lens.tolist()
    sink = None if sinks is None else sinks.astype(q.dtype)
    outs = []
    for b, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if end == start:
            continue
        cached = totals[b] - (end - start)
        keys, values = k[start:end], v[start:end]
        if cached > 0:
            n = pages_for(cached, kc.shape[1], block_tables.shape[1])
            table = block_tables[b : b + 1]
            keys = mx.concatenate([dequant(gather_pages(kc, table, n)[0, :cached], k_scale, q.dtype), keys])
            values = mx.concatenate(
                [dequant(gather_pages(vc, table, n)[0, :cached], v_scale, q.dtype), values]
            )
        out = mx.fast.scaled_dot_product_attention(
            _bhsd(q[None, start:end]),
            _bhsd(keys[None]),
            _bhsd(values[None]),
            scale=scale,
            mask=_prefill_mask(end - start, totals[b], causal, sliding_window),
            sinks=sink,
        )
        outs.append(out[0].transpose(1, 0, 2))
    return mx.concatenate(outs).astype(q.dtype) if outs else mx.zeros(q.shape, q.dtype)


def store_values(x: mx.array, scale: mx.array | None, dtype: mx.Dtype) -> mx.array:
    """What the cache stores for x: x / scale as saturated e4m3fn bytes (fp8 caches), else x in `dtype`."""
    if scale is None:
        return x.astype(dtype)
    return mx.to_fp8(x.astype(mx.float32) / scale)


def write_kv(
    k: mx.array,
    v: mx.array,
    k_cache: mx.array,
    v_cache: mx.array,
    slot_mapping: mx.array,
    k_scale: mx.array | None = None,
    v_scale: mx.array | None = None,
    *,
    layout: str,
) -> tuple[mx.array, mx.array]:
    """Returns the new (k_cache, v_cache). Padded slots (-1) are sent to a scratch row that is dropped."""
    return (
        _scatter(k_cache, store_values(k, k_scale, k_cache.dtype), slot_mapping, layout),
        _scatter(v_cache, store_values(v, v_scale, v_cache.dtype), slot_mapping, layout),
    )


def _scatter(cache: mx.array, values: mx.array, slots: mx.array, layout: str) -> mx.array:
    nhd = as_nhd(cache, layout)
    blocks, block_size, heads, dim = nhd.shape
    rows = blocks * block_size
    flat = mx.concatenate([nhd.reshape(rows, heads, dim), mx.zeros((1, heads, dim), cache.dtype)])
    flat[mx.where(slots >= 0, slots, rows)] = values
    return from_nhd(flat[:rows].reshape(blocks, block_size, heads, dim), layout)
