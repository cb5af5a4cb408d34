"""attention.prefill through torch's own varlen attention (torch.nn.attention.varlen.varlen_attn, the
FlashAttention-2 build inside torch): the torch-only prefill path.

Without a cached prefix every key of a sequence is one of its new tokens, so it runs on k and v as varlen
sequences (cu_seq_k = cu_seqlens_q) and never reads the cache (the contract allows either). GQA
through enable_gqa; window (W - 1, 0); no soft-cap, no sinks (varlen_attn has neither): the record's
predicate says so.
"""

from __future__ import annotations

import importlib

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.base import Platform

from .common import window_left


def prefill(spec: AttentionSpec, platform: Platform):
    ops = importlib.import_module("anyaccel_cuda.torch_ops")  # emulated on an emulated platform
    varlen_attn = ops.varlen_attn
    window = (window_left(spec.sliding_window), 0) if spec.causal else (-1, -1)
    gqa, scale_ = spec.num_q_heads != spec.num_kv_heads, spec.softmax_scale

    def torch_varlen_prefill(
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
        return varlen_attn(
            q,
            k,
            v,
            cu_seqlens_q,
            cu_seqlens_q,
            max_seqlen_q,
            max_seqlen_q,
            scale=scale_,
            window_size=window,
            enable_gqa=gqa,
        )

    return torch_varlen_prefill
