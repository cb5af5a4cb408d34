"""attention.prefill and attention.decode through FlashAttention-4 (`flash_attn.cute.flash_attn_varlen_func`).

The NHD cache is FA4's paged layout as it is: k_cache/v_cache [pages, page_size, Hkv, D], page_table = our
block tables, seqused_k = seq_lens; causal masks align to the end of each sequence, as our prefix semantics
want. Decode is the same call with one query per sequence (cu_seqlens_q = 0..B, cached per batch size).
Window (W - 1, 0), soft-cap and sinks ([Hq] float32, "learnable_sink") map one to one.

On sm_12x FA4 has no paged KV: prefill then runs without a prefix only, on the new tokens' k and v as
varlen sequences (cu_seqlens_k = cu_seqlens_q); the record's predicate rejects prefix specs and decode there.
"""

from __future__ import annotations

import torch
from flash_attn.cute import flash_attn_varlen_func

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.base import Platform

from .. import gates
from .common import window_left, zero_empty_rows


def _window(spec: AttentionSpec) -> tuple[int | None, int | None]:
    return (window_left(spec.sliding_window), 0) if spec.sliding_window > 0 else (None, None)


def prefill(spec: AttentionSpec, platform: Platform):
    paged = platform.capability not in gates.FA4_NO_PAGED_KV
    window, cap, scale_ = _window(spec), spec.softcap, spec.softmax_scale

    def fa4_prefill(
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
        if paged:
            out, _ = flash_attn_varlen_func(
                q,
                k_cache,
                v_cache,
                cu_seqlens_q=cu_seqlens_q,
                max_seqlen_q=max_seqlen_q,
                max_seqlen_k=max_seq_len,
                seqused_k=seq_lens,
                page_table=block_tables,
                softmax_scale=scale_,
                causal=causal,
                window_size=window,
                learnable_sink=sinks,
                softcap=cap,
            )
        else:
            out, _ = flash_attn_varlen_func(
                q,
                k,
                v,
                cu_seqlens_q=cu_seqlens_q,
                cu_seqlens_k=cu_seqlens_q,
                max_seqlen_q=max_seqlen_q,
                max_seqlen_k=max_seqlen_q,
                softmax_scale=scale_,
                causal=causal,
                window_size=window,
                learnable_sink=sinks,
                softcap=cap,
            )
        return out

    return fa4_prefill


def decode(spec: AttentionSpec, platform: Platform):
    window, cap, scale_ = _window(spec), spec.softcap, spec.softmax_scale
    starts: dict[tuple[int, str], torch.Tensor] = {}

    def fa4_decode(
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
        key = (q.shape[0], str(q.device))
        if key not in starts:
            starts[key] = torch.arange(q.shape[0] + 1, dtype=torch.int32, device=q.device)
        out, _ = flash_attn_varlen_func(
            q,
            k_cache,
            v_cache,
            cu_seqlens_q=starts[key],
            max_seqlen_q=1,
            max_seqlen_k=max_seq_len,
            seqused_k=seq_lens,
            page_table=block_tables,
            softmax_scale=scale_,
            causal=True,
            window_size=window,
            learnable_sink=sinks,
            softcap=cap,
        )
        return zero_empty_rows(out, seq_lens)

    return fa4_decode
