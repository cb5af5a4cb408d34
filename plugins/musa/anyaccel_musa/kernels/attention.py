"""attention.prefill and attention.decode through MATE's FlashAttention-3-compatible API (MP31).

The NHD cache is MATE's paged layout as it is: k_cache/v_cache [num_pages, page_size, Hkv, D], page_table =
our block tables (int32), seqused_k / cache_seqlens = seq_lens (int32); causal masks align to the end of
each sequence, as our prefix semantics want. Prefill is `flash_attn_varlen_func` on the packed query
(cu_seqlens_q); decode is `flash_attn_with_kvcache` with one query per sequence ([B, 1, Hq, D]). Window
(W - 1, 0), soft-cap and sinks map one to one; sinks (float32 [Hq]) become the bfloat16 learnable_sink
MATE requires, once per sinks tensor.

Plan (`anyaccel_plan(meta)`, once per forward, not per layer): MATE's scheduler metadata from
`get_scheduler_metadata` for the batch's lengths, with the true maximum lengths (one device-to-host copy per
batch). Layers with sinks take none: MATE drops it with a sink. A call whose length tensors were not planned
(a direct call, the conformance kit) prepares it itself.
"""

from __future__ import annotations

import torch
from mate import flash_attn_varlen_func, flash_attn_with_kvcache, get_scheduler_metadata

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.planning import Converted, Planned
from anyaccel.platforms.base import Platform

from .. import gates

PREFILL = "musa.mate_prefill"
DECODE = "musa.mate_decode"


def _window(spec: AttentionSpec) -> tuple[int, int]:
    return (spec.sliding_window - 1, 0) if spec.sliding_window > 0 else (-1, -1)


def _scheduler(spec: AttentionSpec, causal: bool):
    """(cu_seqlens_q or None, seq_lens) -> (scheduler metadata or None, max_seqlen_q, max_seqlen_k)."""

    def schedule(cu_seqlens_q: torch.Tensor | None, seq_lens: torch.Tensor):
        batch = seq_lens.numel()
        max_q = int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max()) if cu_seqlens_q is not None else 1
        max_k = int(seq_lens.max()) if batch else 0
        if spec.sinks and not gates.SINKS_TAKE_METADATA:
            return None, max_q, max_k
        metadata = get_scheduler_metadata(
            batch,
            max_q,
            max_k,
            spec.num_q_heads,
            spec.num_kv_heads,
            spec.head_dim,
            seqused_k=seq_lens,
            qkv_dtype=spec.dtype,
            cu_seqlens_q=cu_seqlens_q,
            page_size=spec.block_size,
            causal=causal,
            window_size=_window(spec),
            has_softcap=spec.softcap > 0,
        )
        return metadata, max_q, max_k

    return schedule


def prefill(spec: AttentionSpec, platform: Platform):
    window, cap, scale_ = _window(spec), spec.softcap, spec.softmax_scale
    sink_of = Converted(lambda s: s.to(gates.SINK_DTYPE))
    planned = Planned(_scheduler(spec, spec.causal))

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.cu_seqlens_q is not None and meta.prefill_seq_lens is not None:
            meta.plans[PREFILL] = planned.plan(meta.cu_seqlens_q, meta.prefill_seq_lens)

    def mate_prefill(
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
        metadata, max_q, max_k = planned(cu_seqlens_q, seq_lens)
        return flash_attn_varlen_func(
            q,
            k_cache,
            v_cache,
            cu_seqlens_q=cu_seqlens_q,
            max_seqlen_q=max_q,
            max_seqlen_k=max_k,
            seqused_k=seq_lens,
            page_table=block_tables,
            softmax_scale=scale_,
            causal=causal,
            window_size=window,
            learnable_sink=sink_of(sinks),
            softcap=cap,
            scheduler_metadata=metadata if causal == spec.causal else None,
        )

    mate_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return mate_prefill


def decode(spec: AttentionSpec, platform: Platform):
    window, cap, scale_ = _window(spec), spec.softcap, spec.softmax_scale
    sink_of = Converted(lambda s: s.to(gates.SINK_DTYPE))
    schedule = _scheduler(spec, causal=True)

    def derive(seq_lens: torch.Tensor):
        # rows of padded sequences (no keys) come back as zeros, whatever MATE writes for them
        empty = (seq_lens == 0).view(-1, 1, 1, 1)
        return (*schedule(None, seq_lens), empty if bool(empty.any()) else None)

    planned = Planned(derive)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.decode_seq_lens is not None:
            meta.plans[DECODE] = planned.plan(meta.decode_seq_lens)

    def mate_decode(
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
        metadata, _, _, empty = planned(seq_lens)
        out = flash_attn_with_kvcache(
            q.unsqueeze(1),
            k_cache,
            v_cache,
            cache_seqlens=seq_lens,
            page_table=block_tables,
            softmax_scale=scale_,
            causal=True,
            window_size=window,
            learnable_sink=sink_of(sinks),
            softcap=cap,
            scheduler_metadata=metadata,
        )
        if empty is not None:
            out = out.masked_fill(empty, 0.0)
        return out.squeeze(1)

    mate_decode.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return mate_decode
