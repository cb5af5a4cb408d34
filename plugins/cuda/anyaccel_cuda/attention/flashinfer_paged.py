"""attention.decode and attention.prefill through FlashInfer's paged wrappers (FA2/FA3 backends, "auto").

Bind (the factory): one wrapper per spec on the shared workspace, in the spec's cache layout. Plan
(`anyaccel_plan(meta)`, once per forward): the CSR page description from the batch's block tables and
lengths, and wrapper.plan(...) with the spec's scale, window and soft-cap. Run (every layer): wrapper.run()
on the layer's cache, no host sync. A call with tables that were not planned (a direct call, the conformance
kit) plans first, so the kernel is correct either way.

Contract mapping: q as given ([T, Hq, D], strided rows allowed); the (k_cache, v_cache) tuple as it is; fp8
caches: k_scale/v_scale as host floats (read once per scale tensor); sinks float32 [Hq]. Prefill reads every
key from the cache (the new tokens are already written there).
"""

from __future__ import annotations

from typing import Any

import torch
from flashinfer.decode import BatchDecodeWithPagedKVCacheWrapper
from flashinfer.prefill import BatchPrefillWithPagedKVCacheWrapper

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.platforms.base import Platform

from .common import HostScales, csr_pages, window_left, workspace, zero_empty_rows

DECODE = "flashinfer.decode"
PREFILL = "flashinfer.prefill"


def _plan_kwargs(spec: AttentionSpec) -> dict[str, Any]:
    return {
        "window_left": window_left(spec.sliding_window),
        "logits_soft_cap": spec.softcap or None,
        "q_data_type": spec.dtype,
        "kv_data_type": spec.cache_dtype,
        "sm_scale": spec.softmax_scale,
    }


def decode(spec: AttentionSpec, platform: Platform):
    wrapper = BatchDecodeWithPagedKVCacheWrapper(
        workspace(platform.torch_device_type), kv_layout=spec.kv_layout
    )
    planned: list[Any] = [None, None]  # the (block_tables, seq_lens) objects the wrapper is planned for
    scales = HostScales()

    def plan(block_tables: torch.Tensor, seq_lens: torch.Tensor) -> None:
        indptr, indices, last = csr_pages(block_tables, seq_lens, spec.block_size)
        wrapper.plan(
            indptr,
            indices,
            last,
            spec.num_q_heads,
            spec.num_kv_heads,
            spec.head_dim,
            spec.block_size,
            **_plan_kwargs(spec),
        )
        planned[:] = [block_tables, seq_lens]

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.decode_seq_lens is not None and meta.decode_block_tables is not None:
            plan(meta.decode_block_tables, meta.decode_seq_lens)
            meta.plans[DECODE] = wrapper

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
        if planned[0] is not block_tables or planned[1] is not seq_lens:
            plan(block_tables, seq_lens)
        out = wrapper.run(
            q, (k_cache, v_cache), k_scale=scales(k_scale), v_scale=scales(v_scale), sinks=sinks
        )
        return zero_empty_rows(out, seq_lens)

    paged_decode.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return paged_decode


def prefill(spec: AttentionSpec, platform: Platform):
    wrapper = BatchPrefillWithPagedKVCacheWrapper(
        workspace(platform.torch_device_type), kv_layout=spec.kv_layout
    )
    planned: list[Any] = [None, None, None]  # (cu_seqlens_q, block_tables, seq_lens)
    scales = HostScales()

    def plan(cu_seqlens_q: torch.Tensor, block_tables: torch.Tensor, seq_lens: torch.Tensor) -> None:
        indptr, indices, last = csr_pages(block_tables, seq_lens, spec.block_size)
        wrapper.plan(
            cu_seqlens_q,
            indptr,
            indices,
            last,
            spec.num_q_heads,
            spec.num_kv_heads,
            spec.head_dim,
            spec.block_size,
            causal=spec.causal,
            **_plan_kwargs(spec),
        )
        planned[:] = [cu_seqlens_q, block_tables, seq_lens]

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.cu_seqlens_q is not None and meta.prefill_block_tables is not None:
            plan(meta.cu_seqlens_q, meta.prefill_block_tables, meta.prefill_seq_lens)
            meta.plans[PREFILL] = wrapper

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
        if planned[0] is not cu_seqlens_q or planned[1] is not block_tables or planned[2] is not seq_lens:
            plan(cu_seqlens_q, block_tables, seq_lens)
        return wrapper.run(
            q, (k_cache, v_cache), k_scale=scales(k_scale), v_scale=scales(v_scale), sinks=sinks
        )

    paged_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return paged_prefill
