"""The ATB paged attention (torch_npu._npu_paged_attention) and KV writes into the 310P's NZ cache
(torch_npu._npu_reshape_and_cache), as vllm-ascend's 310P path calls them; the same paged attention serves
head dim 512 on A2/A3 (NHD cache), where vllm-ascend prefers it to FIA.

Paged attention gives each query row its own block-table row and KV length and applies no mask, so:
- decode: one row per sequence with KV length seq_lens[b];
- prefill (causal, 310P): one row per new token, the token at position p of sequence b reading the first
  p + 1 cached tokens through b's block-table row. The per-token tables and lengths are built once per
  forward in the plan (a call without a plan builds them itself).
Rows of length 0 (padded decode rows) are not passed (the operation needs lengths >= 1) and come back zero.
"""

from __future__ import annotations

import torch
import torch_npu

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.platforms.base import Platform

from ..layouts import flat
from .planned import Planned, kept_slots

PREFILL = "npu.paged_prefill_310p"


def _cache_view(spec: AttentionSpec):
    return flat if spec.kv_layout != "NHD" else (lambda cache: cache)


def _attend(spec, view, q, k_cache, v_cache, tables, lens, rows, scale):
    """q rows `rows` (None: all) against their table rows and lengths; other rows are zeros."""
    out = torch.zeros_like(q)
    if rows is not None:
        if rows.numel() == 0:
            return out
        q, tables, lens = q[rows], tables[rows], lens[rows]
    q = q.contiguous()
    part = torch.empty_like(q)
    torch_npu._npu_paged_attention(
        q, view(k_cache), view(v_cache), spec.num_kv_heads, spec.num_q_heads, scale, tables, lens, part
    )
    if rows is None:
        return part
    out[rows] = part
    return out


def decode(spec: AttentionSpec, platform: Platform):
    view = _cache_view(spec)
    rows_of = Planned(lambda lens: kept_slots(lens - 1))  # the rows with a KV length (lens - 1 >= 0)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.decode_seq_lens is not None:
            rows_of.plan(meta.decode_seq_lens)

    def paged_decode(
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
    ):
        rows = rows_of(seq_lens)
        return _attend(spec, view, q, k_cache, v_cache, block_tables, seq_lens.to(torch.int32), rows, scale)

    paged_decode.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return paged_decode


def _per_token(block_tables, cu_seqlens_q, seq_lens) -> tuple[torch.Tensor, torch.Tensor]:
    """(tables [T, max_blocks] int32, lengths [T] int32): token i of sequence b reads b's row and
    seq_lens[b] - n_b + i + 1 keys."""
    counts = (cu_seqlens_q[1:] - cu_seqlens_q[:-1]).long()
    seq = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    first = cu_seqlens_q[:-1].long()[seq]
    offset = torch.arange(seq.numel(), device=seq.device) - first
    lens = seq_lens.long()[seq] - counts[seq] + offset + 1
    return block_tables[seq].contiguous(), lens.to(torch.int32)


def prefill(spec: AttentionSpec, platform: Platform):
    view = _cache_view(spec)
    per_token = Planned(_per_token)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.cu_seqlens_q is not None and meta.prefill_block_tables is not None:
            keys = (meta.prefill_block_tables, meta.cu_seqlens_q, meta.prefill_seq_lens)
            meta.plans[PREFILL] = per_token.plan(*keys)

    def paged_prefill(
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
    ):
        tables, lens = per_token(block_tables, cu_seqlens_q, seq_lens)
        return _attend(spec, view, q, k_cache, v_cache, tables, lens, None, scale)

    paged_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return paged_prefill


def write_kv_nz(spec: AttentionSpec, platform: Platform):
    """_npu_reshape_and_cache into the NZ caches; padded slots (-1) are dropped first (kept indices planned
    once per forward), slots passed as int32 as vllm-ascend does."""
    kept = Planned(kept_slots)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        kept.plan(meta.slot_mapping)

    def reshape_and_cache(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        keep = kept(slot_mapping)
        if keep is not None:
            k, v, slot_mapping = k[keep], v[keep], slot_mapping[keep]
        torch_npu._npu_reshape_and_cache(
            k.contiguous(), v.contiguous(), flat(k_cache), flat(v_cache), slot_mapping.to(torch.int32)
        )

    reshape_and_cache.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return reshape_and_cache
