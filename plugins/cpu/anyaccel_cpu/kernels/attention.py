"""attention.decode on the CPU through torch's fused scaled_dot_product_attention.

Each sequence's pages are gathered with one index_select per cache into [B, Hkv, L, D] (a view, no further
copy), and SDPA's CPU kernel attends with grouped-query heads and a boolean mask for the sequence lengths and
the sliding window. That is two gathers and one fused call per layer, where the reference's vectorised
softmax runs some twenty separate ops (demo Qwen3-MoE, 8 sequences of ~140 tokens: 0.2-0.4 ms against 3 ms).
SDPA has no logit soft-capping and no sinks: such specs stay with other kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.base import Platform


def _pages(cache: torch.Tensor, table: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype):
    """The pages of `table` [B, n] from a [blocks, bs, Hkv, D] view, as [B, Hkv, n * bs, D] in `dtype`."""
    b, n = table.shape
    _, block_size, hkv, d = cache.shape
    pages = cache.index_select(0, table.flatten()).view(b, n * block_size, hkv, d)
    pages = pages.to(dtype) if scale is None else pages.to(dtype) * scale.to(dtype)
    return pages.transpose(1, 2)


def decode(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    gqa = spec.num_q_heads != spec.num_kv_heads

    def cpu_decode(
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
        kc, vc = k_cache, v_cache  # NHD: [num_blocks, block_size, Hkv, D]
        n = min(block_tables.shape[1], -(-max_seq_len // kc.shape[1]))
        # entries past a sequence's last page may be anything (-1): read page 0 there, masked below
        table = block_tables[:, :n].long().clamp(0, kc.shape[0] - 1)
        keys = _pages(kc, table, k_scale, q.dtype)
        values = _pages(vc, table, v_scale, q.dtype)
        position = torch.arange(keys.shape[2], device=q.device)
        lens = seq_lens.long().unsqueeze(1)
        visible = position < lens
        if sliding_window > 0:
            visible &= position >= lens - sliding_window
        out = F.scaled_dot_product_attention(
            q.unsqueeze(2), keys, values, attn_mask=visible[:, None, None], scale=scale, enable_gqa=gqa
        ).squeeze(2)
        # a row with no key (an empty, padded sequence) returns zeros, as the contract says, not NaN
        return out.masked_fill((lens == 0).unsqueeze(-1), 0.0)

    return cpu_decode


def write_kv(spec: AttentionSpec, platform: Platform) -> Callable[..., None]:
    """One index_copy_ per cache into its flat [num_blocks * block_size, Hkv, D] NHD view."""

    def cpu_write_kv(
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> None:
        slots = slot_mapping
        if bool((slot_mapping < 0).any()):  # padded tokens are not stored (a free check on the CPU)
            keep = slot_mapping >= 0
            slots, k, v = slot_mapping[keep], k[keep], v[keep]
        for src, cache, scale in ((k, k_cache, k_scale), (v, v_cache, v_scale)):
            flat = cache.view(-1, *cache.shape[2:])
            if scale is not None:  # fp8: saturate, round, and store the bytes (no fp8 index_copy_ kernel)
                bound = torch.finfo(cache.dtype).max
                src = (src.float() / scale).clamp(-bound, bound).to(cache.dtype)
                flat, src = flat.view(torch.uint8), src.view(torch.uint8)
            flat.index_copy_(0, slots, src.to(flat.dtype))

    return cpu_write_kv
