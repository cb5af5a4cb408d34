"""attention.prefill / decode / write_kv through IPEX's ipex.llm.modules.PagedAttention (the XPU stack vLLM
used before vllm-xpu-kernels), selected only where IPEX imports against the installed torch (stack.py).

flash_attn_varlen_func(out, q, k_cache, v_cache, cu_seqlens_q, cu_seqlens_kv, max_seqlen_q, max_seqlen_kv,
scale, is_causal, block_tables, alibi_slopes, window_size_left=, window_size_right=, softcap=) reads the NHD
cache [P, block_size, Hkv, D] and takes CUMULATIVE KV lengths (its parameter is misspelt `is_cusal`, so the
leading arguments are passed by position). The cumulative lengths (and decode's query offsets 0..B) are built
once per forward in the plan, or by a call that was not planned. Window as in common.py; soft-cap C as
`softcap=C` (-1 disables it).
"""

from __future__ import annotations

import intel_extension_for_pytorch as ipex
import torch
import torch.nn.functional as F

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.planning import Planned
from anyaccel.platforms.base import Platform

from .common import one_query_each, window

PREFILL = "xpu.ipex_flash_attn_prefill"
DECODE = "xpu.ipex_flash_attn_decode"


def _cumulative(seq_lens: torch.Tensor) -> torch.Tensor:
    return F.pad(torch.cumsum(seq_lens, 0, dtype=torch.int32), (1, 0))


def _call(spec, q, k_cache, v_cache, cu_q, cu_kv, max_q, max_kv, scale, causal, tables, bound, softcap):
    out = torch.empty_like(q)
    ipex.llm.modules.PagedAttention.flash_attn_varlen_func(
        out,
        q.contiguous(),
        k_cache,
        v_cache,
        cu_q,
        cu_kv,
        max_q,
        max_kv,
        scale,
        causal,
        tables,
        None,
        window_size_left=bound[0],
        window_size_right=bound[1],
        softcap=softcap if softcap > 0 else -1.0,
    )
    return out


def prefill(spec: AttentionSpec, platform: Platform):
    cu_kv_of = Planned(_cumulative)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.prefill_seq_lens is not None:
            meta.plans[PREFILL] = cu_kv_of.plan(meta.prefill_seq_lens)

    def ipex_prefill(
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
        bound = window(spec.sliding_window, causal)
        return _call(
            spec, q, k_cache, v_cache, cu_seqlens_q, cu_kv_of(seq_lens), max_seqlen_q, max_seq_len, scale,
            causal, block_tables, bound, softcap,
        )  # fmt: skip

    ipex_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return ipex_prefill


def decode(spec: AttentionSpec, platform: Platform):
    bound = window(spec.sliding_window, True)
    offsets = Planned(lambda lens: (one_query_each(lens), _cumulative(lens)))

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.decode_seq_lens is not None:
            meta.plans[DECODE] = offsets.plan(meta.decode_seq_lens)

    def ipex_decode(
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
        cu_q, cu_kv = offsets(seq_lens)
        return _call(
            spec, q, k_cache, v_cache, cu_q, cu_kv, 1, max_seq_len, scale, True, block_tables, bound, softcap
        )

    ipex_decode.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return ipex_decode


def write_kv(spec: AttentionSpec, platform: Platform):
    def ipex_reshape_and_cache_flash(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        ipex.llm.modules.PagedAttention.reshape_and_cache_flash(k, v, k_cache, v_cache, slot_mapping)

    return ipex_reshape_and_cache_flash
