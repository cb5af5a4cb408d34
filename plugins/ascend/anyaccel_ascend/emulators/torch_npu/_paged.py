"""_npu_paged_attention: the ATB PagedAttention operation, as vllm-ascend calls it.

Signature (positional order as in torch_npu's graph handlers, where context_lens is argument 7):
    _npu_paged_attention(query, key_cache, value_cache, num_kv_heads, num_heads, scale_value, block_table,
                         context_lens, out) -> None, writing `out`
Documented limits emulated (torch_npu 2.14 op_plugin/atb/_atb_api_docs.py, the PagedAttention spec shared
with _npu_paged_attention_v2):
- query [num_tokens, num_heads, D] float16/bfloat16, contiguous; out the same shape and dtype.
- caches: Atlas A2/A3 ND [num_blocks, block_size, kv_heads, D]; Atlas inference (310P) NZ
  [num_blocks, kv_heads*D/16, block_size, 16], float16 only, batch <= 2048, block_size * D <= 128 * 128.
- block_size % 16 == 0 and <= 128; D in (0, 256] (A2/A3 also accept up to 576 with differing K/V dims,
  not emulated), a multiple of 16 for NZ; num_heads % num_kv_heads == 0.
- block_table int32 [num_tokens, max_blocks], used entries in [0, num_blocks); context_lens int32 [num_tokens]
  (the KV length of each query row), each >= 1.
Each query row attends to the first context_lens[i] tokens of its pages (no mask).
"""

from __future__ import annotations

import torch

from ._cache import _check_nz, nz_view_index
from ._checks import HALF, dtype_of_soc, is_310p, require
from ._masks import attend


def _npu_paged_attention(
    query: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    num_kv_heads: int,
    num_heads: int,
    scale_value: float,
    block_table: torch.Tensor,
    context_lens: torch.Tensor,
    out: torch.Tensor,
    *,
    workspace: torch.Tensor | None = None,
) -> None:
    """`workspace`: ATB's scratch buffer (from _npu_paged_attention_get_workspace); unused here."""
    fn = "_npu_paged_attention"
    require(query.dtype in HALF, fn, f"query dtype {query.dtype}: float16 or bfloat16")
    dtype_of_soc(fn, query.dtype)
    require(query.dim() == 3 and query.is_contiguous(), fn, "query must be a contiguous [num_tokens, N, D]")
    tokens, heads, d = query.shape
    require(heads == num_heads, fn, f"num_heads {num_heads} != query heads {heads}")
    require(
        num_kv_heads > 0 and num_heads % num_kv_heads == 0, fn, "num_heads must be a multiple of num_kv_heads"
    )
    limit = 256 if is_310p() else 576  # A2/A3: K/V head sizes up to 576 outside the 310P and quantized forms
    require(0 < d <= limit, fn, f"head size {d} must lie in (0, {limit}]")
    require(key_cache.dtype == query.dtype == value_cache.dtype, fn, "caches must have the query's dtype")
    if is_310p():
        require(query.dtype == torch.float16, fn, "Atlas inference (310P) supports float16 only")
        require(0 < tokens <= 2048, fn, f"batch {tokens} must lie in (0, 2048] on Atlas inference")
        require(d % 16 == 0, fn, "NZ caches need a head size that is a multiple of 16")
        blocks, bs = _check_nz(fn, key_cache, num_kv_heads, d)
        require(value_cache.shape == key_cache.shape, fn, "value_cache must be shaped like key_cache")
        require(bs * d <= 128 * 128, fn, f"block_size * head_size = {bs * d} exceeds 128 * 128")
        k_slots = nz_view_index(key_cache, num_kv_heads, d)
        v_slots = nz_view_index(value_cache, num_kv_heads, d)
    else:
        require(
            key_cache.dim() == 4 and key_cache.is_contiguous(), fn, "ND cache: [num_blocks, bs, kv_heads, D]"
        )
        blocks, bs, kvh, kd = key_cache.shape
        require(
            (kvh, kd) == (num_kv_heads, d), fn, f"cache {tuple(key_cache.shape)} does not match the query"
        )
        require(value_cache.shape == key_cache.shape, fn, "value_cache must be shaped like key_cache")
        k_slots = key_cache.reshape(blocks * bs, kvh, d)
        v_slots = value_cache.reshape(blocks * bs, kvh, d)
    require(bs % 16 == 0 and bs <= 128, fn, f"block_size {bs}: a multiple of 16, at most 128")
    require(block_table.dtype == torch.int32 and block_table.dim() == 2, fn, "block_table must be 2-D int32")
    require(block_table.shape[0] == tokens, fn, "block_table needs one row per query token")
    require(
        context_lens.dtype == torch.int32 and tuple(context_lens.shape) == (tokens,),
        fn,
        "context_lens: int32",
    )
    require(
        out.shape == query.shape and out.dtype == query.dtype, fn, "out must be shaped and typed like query"
    )
    lens = context_lens.tolist()
    require(all(n >= 1 for n in lens), fn, "context_lens must be >= 1")
    for i, n in enumerate(lens):
        nblocks = -(-n // bs)
        require(block_table.shape[1] >= nblocks, fn, f"block_table row {i} is too short")
        pages = block_table[i, :nblocks].long()
        require(bool(((pages >= 0) & (pages < blocks)).all()), fn, f"block id out of range in row {i}")
        slots = (pages.unsqueeze(1) * bs + torch.arange(bs)).reshape(-1)[:n]
        row = attend(query[i : i + 1], k_slots[slots], v_slots[slots], scale_value, 0, 0, 0, None)
        out[i] = row[0].to(out.dtype)
