"""attention.decode and attention.prefill through FlashInfer's trtllm-gen kernels (sm_100 family).

Both read the HND paged cache as the (k_cache, v_cache) tuple, our int32 block tables and sequence lengths as
they are; bmm1_scale is the softmax scale and bmm2_scale 1 (fp16/bf16 caches only: fp8 caches would need q
in fp8 too). The window is window_left = W - 1; sinks float32 [Hq]; there is no soft-cap argument.
Prefill needs cum_seq_lens_kv, the cumsum of seq_lens: built in the plan, once per forward (and on the
device, without a host sync, for a call that was not planned).
"""

from __future__ import annotations

from typing import Any

import torch
from flashinfer.decode import trtllm_batch_decode_with_kv_cache
from flashinfer.prefill import trtllm_batch_context_with_kv_cache

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.platforms.base import Platform

from .common import window_left, workspace, zero_empty_rows

PREFILL = "flashinfer.trtllm_prefill"


def decode(spec: AttentionSpec, platform: Platform):
    buffer = workspace(platform.torch_device_type)
    left, bmm1 = window_left(spec.sliding_window), spec.softmax_scale

    def trtllm_decode(
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
        out = trtllm_batch_decode_with_kv_cache(
            q.contiguous(),
            (k_cache, v_cache),
            buffer,
            block_tables,
            seq_lens,
            max_seq_len,
            bmm1_scale=bmm1,
            bmm2_scale=1.0,
            window_left=left,
            sinks=sinks,
            kv_layout="HND",
            backend="trtllm-gen",
        )
        return zero_empty_rows(out, seq_lens)

    return trtllm_decode


def _cum_kv(seq_lens: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(seq_lens.numel() + 1, dtype=torch.int32, device=seq_lens.device)
    torch.cumsum(seq_lens, 0, out=out[1:])
    return out


def prefill(spec: AttentionSpec, platform: Platform):
    buffer = workspace(platform.torch_device_type)
    left, bmm1 = window_left(spec.sliding_window), spec.softmax_scale
    planned: list[Any] = [None, None]  # (seq_lens, cum_seq_lens_kv)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.prefill_seq_lens is not None:
            planned[:] = [meta.prefill_seq_lens, _cum_kv(meta.prefill_seq_lens)]
            meta.plans[PREFILL] = planned[1]

    def trtllm_prefill(
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
        cum_kv = planned[1] if planned[0] is seq_lens else _cum_kv(seq_lens)
        return trtllm_batch_context_with_kv_cache(
            q.contiguous(),
            (k_cache, v_cache),
            buffer,
            block_tables,
            seq_lens,
            max_seqlen_q,
            max_seq_len,
            bmm1,
            1.0,
            seq_lens.shape[0],
            cu_seqlens_q,
            cum_kv,
            window_left=left,
            sinks=sinks,
            kv_layout="HND",
            causal=causal,
        )

    trtllm_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return trtllm_prefill
