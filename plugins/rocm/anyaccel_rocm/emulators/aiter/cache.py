"""KV-cache writes (aiter/ops/cache.py, ROCm/aiter e404860), in plain torch. Slots < 0 are skipped; fp8
caches ("fp8" kv_cache_dtype) hold sat(x / scale) in AITER's fp8 for the gfx."""

from __future__ import annotations

import torch

from ._device import fp8


def _stored(x: torch.Tensor, cache: torch.Tensor, kv_cache_dtype: str, scale: torch.Tensor | None):
    if kv_cache_dtype == "auto":
        if cache.dtype != x.dtype:
            raise RuntimeError(f"kv_cache_dtype auto: cache {cache.dtype} differs from input {x.dtype}")
        return x
    if kv_cache_dtype not in ("fp8", "fp8_e4m3"):
        raise RuntimeError(f"Unsupported KV cache dtype: {kv_cache_dtype}")
    if cache.dtype != fp8():
        raise RuntimeError(f"fp8 cache must be {fp8()} on this gfx, got {cache.dtype}")
    if scale is None:
        raise RuntimeError("fp8 KV cache needs k_scale and v_scale")
    top = torch.finfo(cache.dtype).max
    return (x.float() / scale.float()).clamp(-top, top).to(cache.dtype)


def _valid(key, value, slot_mapping):
    if slot_mapping.dtype != torch.int64:
        raise RuntimeError(f"slot_mapping must be int64, got {slot_mapping.dtype}")
    if key.shape != value.shape or key.dim() != 3:
        raise RuntimeError("key and value must both be [num_tokens, num_heads, head_size]")
    keep = slot_mapping >= 0
    return keep.nonzero().flatten(), slot_mapping[keep]


def reshape_and_cache_flash(
    key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale
):
    """key/value [T, H, D] into key_cache/value_cache [num_blocks, block_size, H, D] (NHD)."""
    if key_cache.dim() != 4 or key_cache.shape[2:] != key.shape[1:]:
        raise RuntimeError(f"key_cache must be [num_blocks, block_size, {key.shape[1]}, {key.shape[2]}]")
    tokens, slots = _valid(key, value, slot_mapping)
    bs = key_cache.shape[1]
    blocks, offsets = slots // bs, slots % bs
    key_cache[blocks, offsets] = _stored(key[tokens], key_cache, kv_cache_dtype, k_scale)
    value_cache[blocks, offsets] = _stored(value[tokens], value_cache, kv_cache_dtype, v_scale)


def reshape_and_cache(
    key,
    value,
    key_cache,
    value_cache,
    slot_mapping,
    kv_cache_dtype,
    k_scale=None,
    v_scale=None,
    asm_layout=False,
):
    """key_cache [num_blocks, H, D/x, block_size, x] (x = 16 bytes of the cache's elements); value_cache
    [num_blocks, H, D, block_size], or with asm_layout [num_blocks, H, block_size/x, D, x]."""
    t, h, d = key.shape
    x = 16 // key_cache.element_size()
    if (
        key_cache.dim() != 5
        or key_cache.shape[1] != h
        or key_cache.shape[2] * x != d
        or key_cache.shape[4] != x
    ):
        raise RuntimeError(f"key_cache must be [num_blocks, {h}, {d // x}, block_size, {x}]")
    bs = key_cache.shape[3]
    want_v = (value_cache.shape[0], h, bs // x, d, x) if asm_layout else (value_cache.shape[0], h, d, bs)
    if tuple(value_cache.shape) != want_v:
        raise RuntimeError(f"value_cache must be {list(want_v)}, got {list(value_cache.shape)}")
    tokens, slots = _valid(key, value, slot_mapping)
    blocks, offsets = slots // bs, slots % bs
    k = _stored(key[tokens], key_cache, kv_cache_dtype, k_scale).view(-1, h, d // x, x)
    v = _stored(value[tokens], value_cache, kv_cache_dtype, v_scale)
    key_cache[blocks, :, :, offsets, :] = k
    if asm_layout:
        value_cache[blocks, :, offsets // x, :, offsets % x] = v
    else:
        value_cache[blocks, :, :, offsets] = v
