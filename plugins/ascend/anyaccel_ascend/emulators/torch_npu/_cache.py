"""KV-cache writes: npu_scatter_pa_kv_cache (A2/A3) and the ATB op _npu_reshape_and_cache (310P, NZ cache).

npu_scatter_pa_kv_cache (torch_npu 2.14 _op_plugin_docs.py), the case emulated is its "scenario two":
    key/value [T, N, D] (3-D), key_cache/value_cache [num_blocks, block_size, N, D], slot_mapping [T]
    int32/int64, cache_mode "Norm" (ND caches; the default "PA_NZ" expects NZ caches and is not emulated).
    Every tensor contiguous; key, value and caches share one dtype; slots in [0, num_blocks * block_size)
    and distinct (the doc does not guarantee a result otherwise; the emulator refuses).
_npu_reshape_and_cache(key, value, key_cache, value_cache, slot_indices) (ATB ReshapeAndCache, as
vllm-ascend's 310P path calls it): key/value [T, N, D] float16; caches in NZ, [num_blocks, N*D/16,
block_size, 16]: token slot s, channel c = h*D + d sits at [s // bs, c // 16, s % bs, c % 16]; slot_indices
int32 [T] in range and distinct.
"""

from __future__ import annotations

import torch

from ._checks import FLOATS, NotEmulated, is_310p, require, unused

NZ_LAST = 16  # 16 float16 values: the 32-byte fractal row of the NZ format


def _slots(fn: str, slot_mapping: torch.Tensor, tokens: int, capacity: int) -> torch.Tensor:
    require(
        slot_mapping.dim() == 1 and slot_mapping.shape[0] == tokens, fn, f"slot_mapping must be [{tokens}]"
    )
    slots = slot_mapping.long()
    if tokens:
        require(
            bool(((slots >= 0) & (slots < capacity)).all()), fn, f"slot values must lie in [0, {capacity})"
        )
        require(slots.unique().numel() == tokens, fn, "slot values must be distinct")
    return slots


def npu_scatter_pa_kv_cache(
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
    *,
    compress_lens=None,
    compress_seq_offsets=None,
    seq_lens=None,
    cache_mode: str | None = "PA_NZ",
) -> None:
    fn = "npu_scatter_pa_kv_cache"
    unused(fn, compress_lens=compress_lens, compress_seq_offsets=compress_seq_offsets, seq_lens=seq_lens)
    require(not is_310p(), fn, "not supported on Atlas inference (310P)")
    if cache_mode not in (None, "Norm"):
        raise NotEmulated(f"torch_npu.{fn}: cache_mode {cache_mode!r} (NZ caches) is not emulated; 'Norm' is")
    for name, t in (("key", key), ("value", value), ("key_cache", key_cache), ("value_cache", value_cache)):
        require(t.is_contiguous(), fn, f"{name} must be contiguous")
    require(key.dtype in FLOATS, fn, f"dtype {key.dtype} is not emulated (float16, bfloat16, float32 are)")
    require(
        value.dtype == key.dtype and key_cache.dtype == key.dtype and value_cache.dtype == key.dtype,
        fn,
        "key, value, key_cache and value_cache must share one dtype",
    )
    require(
        key.dim() == 3 and value.dim() == 3, fn, "3-D key/value [T, N, D] expected (4-D is scenario three)"
    )
    require(key.shape[:2] == value.shape[:2], fn, "key and value must agree in their first two dims")
    require(key_cache.dim() == 4 and value_cache.dim() == 4, fn, "caches must be 4-D")
    blocks, bs, heads, d = key_cache.shape
    require(
        (heads, d) == tuple(key.shape[1:]),
        fn,
        f"key_cache {tuple(key_cache.shape)} does not hold {key.shape}",
    )
    require(
        tuple(value_cache.shape) == (blocks, bs, heads, value.shape[2]),
        fn,
        f"value_cache {tuple(value_cache.shape)} does not hold {tuple(value.shape)}",
    )
    require(slot_mapping.dtype in (torch.int32, torch.int64), fn, "slot_mapping must be int32 or int64")
    slots = _slots(fn, slot_mapping, key.shape[0], blocks * bs)
    key_cache.view(blocks * bs, heads, d)[slots] = key
    value_cache.view(blocks * bs, heads, value.shape[2])[slots] = value


def nz_view_index(cache: torch.Tensor, heads: int, d: int) -> torch.Tensor:
    """[num_blocks, N*D/16, bs, 16] -> a [num_blocks * bs, N, D] copy in slot order (used by readers)."""
    blocks, _, bs, _ = cache.shape
    return cache.permute(0, 2, 1, 3).reshape(blocks * bs, heads, d)


def _check_nz(fn: str, cache: torch.Tensor, heads: int, d: int) -> tuple[int, int]:
    require(
        cache.dim() == 4 and cache.shape[3] == NZ_LAST, fn, "NZ cache must be [num_blocks, N*D/16, bs, 16]"
    )
    require(
        cache.shape[1] * NZ_LAST == heads * d, fn, f"NZ cache second dim must be N*D/16 = {heads * d // 16}"
    )
    require(cache.is_contiguous(), fn, "cache must be contiguous")
    return cache.shape[0], cache.shape[2]


def _npu_reshape_and_cache(
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    slot_indices: torch.Tensor,
) -> None:
    fn = "_npu_reshape_and_cache"
    if not is_310p():
        raise NotEmulated(f"torch_npu.{fn}: only the Atlas inference (310P) NZ form is emulated")
    require(key.dtype == torch.float16, fn, "Atlas inference (310P) supports float16 only")
    require(value.dtype == key.dtype and key_cache.dtype == key.dtype == value_cache.dtype, fn, "one dtype")
    require(key.dim() == 3 and value.shape == key.shape, fn, "key/value must be [T, N, D] of one shape")
    _, heads, d = key.shape
    require(d % 16 == 0, fn, f"head dim {d} must be a multiple of 16 for NZ caches")
    blocks, bs = _check_nz(fn, key_cache, heads, d)
    require(value_cache.shape == key_cache.shape, fn, "value_cache must be shaped like key_cache")
    require(slot_indices.dtype == torch.int32, fn, "slot_indices must be int32")
    slots = _slots(fn, slot_indices, key.shape[0], blocks * bs)
    for src, cache in ((key, key_cache), (value, value_cache)):
        rows = src.reshape(src.shape[0], heads * d // NZ_LAST, NZ_LAST)
        cache[slots // bs, :, slots % bs, :] = rows
