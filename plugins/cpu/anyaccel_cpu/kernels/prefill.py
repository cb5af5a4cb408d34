"""attention.prefill on the CPU through torch's fused scaled_dot_product_attention, one sequence at a time.

A sequence without a cached prefix attends over its new keys and values as given (is_causal: SDPA's CPU
flash kernel, tiled, no mask in memory); one with a cached prefix reads the prefix's pages from the cache
(one index_select per cache, only its first `cached` slots kept, fp8 dequantized) ahead of the new tokens and
passes the causal / sliding-window visibility as a boolean [new, cached + new] mask. SmolLM2-135M, 128
new tokens, 9 query and 3 KV heads of 64: 0.39 ms per layer against the reference's 1.3 ms. SDPA has no
logit soft-capping and no sinks: such specs stay with other kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import check_pages
from anyaccel.platforms.base import Platform


def _prefix(
    cache: torch.Tensor, table: torch.Tensor, cached: int, scale: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """A sequence's first `cached` tokens, [cached, Hkv, D] in dtype, from its pages `table` [n] of an NHD
    cache (fp8 dequantized by its scale)."""
    pages = cache.index_select(0, table.long()).flatten(0, 1)[:cached]
    return pages.to(dtype) if scale is None else pages.to(dtype) * scale.to(dtype)


def _causal_mask(new: int, cached: int, window: int, device: torch.device) -> torch.Tensor:
    """[new, cached + new] bool: query i, at position cached + i, sees key j <= cached + i (and within the
    window)."""
    j = torch.arange(cached + new, device=device)
    pos = torch.arange(cached, cached + new, device=device).unsqueeze(1)
    return (j <= pos) & (j > pos - window) if window > 0 else j <= pos


def prefill(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    gqa = spec.num_q_heads != spec.num_kv_heads

    def cpu_prefill(
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
        block_size, num_blocks = k_cache.shape[1], k_cache.shape[0]  # NHD: [num_blocks, block_size, Hkv, D]
        check_pages("attention.prefill", block_tables, seq_lens, block_size, num_blocks, max_seq_len)
        out = torch.empty_like(q)
        bounds, totals = cu_seqlens_q.tolist(), seq_lens.tolist()
        for b, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            new, total = end - start, totals[b]
            if new == 0:
                continue
            cached = total - new
            keys, values = k[start:end], v[start:end]
            if cached > 0:
                table = block_tables[b, : -(-cached // block_size)]
                keys = torch.cat((_prefix(k_cache, table, cached, k_scale, q.dtype), keys.to(q.dtype)))
                values = torch.cat((_prefix(v_cache, table, cached, v_scale, q.dtype), values.to(q.dtype)))
            # SDPA's is_causal aligns the mask top-left: right without a prefix; a prefix or a window
            # shorter than the sequence needs the mask (a non-causal query sees all its sequence's keys)
            plain = cached == 0 and (sliding_window <= 0 or sliding_window >= new)
            mask = _causal_mask(new, cached, sliding_window, q.device) if causal and not plain else None
            out[start:end] = F.scaled_dot_product_attention(
                q[start:end].transpose(0, 1).unsqueeze(0),
                keys.transpose(0, 1).unsqueeze(0),
                values.transpose(0, 1).unsqueeze(0),
                attn_mask=mask,
                is_causal=causal and plain,
                scale=scale,
                enable_gqa=gqa,
            )[0].transpose(0, 1)
        return out

    return cpu_prefill
