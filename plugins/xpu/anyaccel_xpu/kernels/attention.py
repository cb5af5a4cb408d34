"""attention.prefill / decode through vllm_xpu_kernels.flash_attn_interface.flash_attn_varlen_func over the
NHD paged cache ([P, block_size, Hkv, D]); attention.write_kv through _C_cache_ops.reshape_and_cache_flash.

Contract mapping: the window as window_size (common.py); seq_lens are the per-sequence KV lengths
(seqused_k); fp8 caches pass their [1] scales as k_descale / v_descale (the library requires views of one
scalar); sinks [Hq] float32 go to s_aux. Decode is the same call with one query per sequence: its
cumulative query lengths (0, 1, ..., B) are built once per forward in the plan (`anyaccel_plan`), or by a
call that was not planned.
"""

from __future__ import annotations

import torch
from vllm_xpu_kernels.flash_attn_interface import flash_attn_varlen_func

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.planning import Planned
from anyaccel.platforms.base import Platform

from .. import vendor_ops as ops
from .common import one_query_each, window

DECODE = "xpu.flash_attn_decode"
KV_CACHE_DTYPE = {torch.float8_e4m3fn: "fp8_e4m3", torch.float8_e5m2: "fp8_e5m2"}


def prefill(spec: AttentionSpec, platform: Platform):
    bound = window(spec.sliding_window, spec.causal)

    def flash_attn_prefill(
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
        return flash_attn_varlen_func(
            q,
            k_cache,
            v_cache,
            max_seqlen_q,
            cu_seqlens_q,
            max_seq_len,
            seqused_k=seq_lens,
            softmax_scale=scale,
            causal=causal,
            window_size=bound if causal == spec.causal else window(spec.sliding_window, causal),
            block_table=block_tables,
            k_descale=k_scale,
            v_descale=v_scale,
            s_aux=sinks,
        )

    return flash_attn_prefill


def decode(spec: AttentionSpec, platform: Platform):
    bound = window(spec.sliding_window, True)
    cu_of = Planned(one_query_each)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.decode_seq_lens is not None:
            meta.plans[DECODE] = cu_of.plan(meta.decode_seq_lens)

    def flash_attn_decode(
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
        return flash_attn_varlen_func(
            q,
            k_cache,
            v_cache,
            1,
            cu_of(seq_lens),
            max_seq_len,
            seqused_k=seq_lens,
            softmax_scale=scale,
            causal=True,
            window_size=bound,
            block_table=block_tables,
            k_descale=k_scale,
            v_descale=v_scale,
            s_aux=sinks,
        )

    flash_attn_decode.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return flash_attn_decode


def write_kv(spec: AttentionSpec, platform: Platform):
    """reshape_and_cache_flash skips slots of -1 itself; its scales are required tensors, ones for 16-bit
    and float32 caches (made once per binding)."""
    kv_cache_dtype = KV_CACHE_DTYPE.get(spec.cache_dtype, "auto")
    one = torch.ones(1, dtype=torch.float32, device=platform.torch_device_type)

    def reshape_and_cache_flash(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        ops.cache_ops.reshape_and_cache_flash(
            k,
            v,
            k_cache,
            v_cache,
            slot_mapping,
            kv_cache_dtype,
            one if k_scale is None else k_scale,
            one if v_scale is None else v_scale,
        )

    return reshape_and_cache_flash
