"""attention.decode and attention.prefill through FlashInfer's trtllm-gen kernels (sm_100 family).

Both read the HND paged cache as the (k_cache, v_cache) tuple, our int32 block tables and sequence lengths as
they are. The window is window_left = W - 1; sinks float32 [Hq]; there is no soft-cap argument.
Prefill needs cum_seq_lens_kv, the cumsum of seq_lens: built in the plan, once per forward (and on the
device, without a host sync, for a call that was not planned).

Scales (FlashInfer's fused form, as vLLM's FlashInfer backend passes them): bmm1_scale = q_scale * k_scale
* softmax scale multiplies q.k, bmm2_scale = v_scale multiplies the output. fp16/bf16 caches: q_scale =
k_scale = v_scale = 1. fp8 e4m3 caches (gates.TRTLLM_*_WITH_FP8_KV):
- decode runs the model's fp16/bf16 q over the fp8 cache; the scales stay on the device: bmm1 in the log2
  form trtllm-gen consumes (bmm1_scale_log2, made once per k_scale tensor), bmm2 = the v_scale tensor;
- context (prefill) has no kernel for fp16/bf16 q with an fp8 cache, so q is quantized here to e4m3 with one
  per-tensor scale amax(|q|) / 448 computed on the device (no host sync); bmm1 = that scale * k_scale *
  softmax scale as a device tensor, and the output comes back in q's dtype. Rounding q to e4m3 is what the
  contract's fp8-cache tolerance allows for kernels that run the products in e4m3.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from flashinfer.decode import trtllm_batch_decode_with_kv_cache
from flashinfer.prefill import trtllm_batch_context_with_kv_cache

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.platforms.base import Platform

from ..per_tensor import PerTensor
from .common import window_left, workspace, zero_empty_rows

PREFILL = "flashinfer.trtllm_prefill"
E4M3, E4M3_MAX = torch.float8_e4m3fn, 448.0
LOG2E = 1 / math.log(2)


def bmm1_log2(softmax_scale: float) -> PerTensor[torch.Tensor]:
    """k_scale -> k_scale * softmax scale * log2(e), a float32 [1] device tensor, once per k_scale tensor."""
    return PerTensor(lambda k_scale: (k_scale.reshape(1).float() * (softmax_scale * LOG2E)).contiguous())


def quantize_query(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q [T, Hq, D] fp16/bf16 -> (e4m3 q, float32 [1] scale) with q ~= e4m3 * scale, on the device."""
    scale = (q.abs().amax().float() / E4M3_MAX).clamp_min(torch.finfo(torch.float32).tiny).reshape(1)
    q8 = (q.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return q8, scale


def decode(spec: AttentionSpec, platform: Platform):
    buffer = workspace(platform.torch_device_type)
    left, bmm1 = window_left(spec.sliding_window), spec.softmax_scale
    fp8_scale = bmm1_log2(spec.softmax_scale) if spec.fp8_kv else None

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
        scales: dict[str, Any] = {"bmm1_scale": bmm1, "bmm2_scale": 1.0}
        if fp8_scale is not None:
            scales = {"bmm1_scale_log2": fp8_scale(k_scale), "bmm2_scale": v_scale}
        out = trtllm_batch_decode_with_kv_cache(
            q.contiguous(),
            (k_cache, v_cache),
            buffer,
            block_tables,
            seq_lens,
            max_seq_len,
            window_left=left,
            sinks=sinks,
            kv_layout="HND",
            backend="trtllm-gen",
            **scales,
        )
        return zero_empty_rows(out, seq_lens)

    return trtllm_decode


def _cum_kv(seq_lens: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(seq_lens.numel() + 1, dtype=torch.int32, device=seq_lens.device)
    torch.cumsum(seq_lens, 0, out=out[1:])
    return out


def prefill(spec: AttentionSpec, platform: Platform):
    buffer = workspace(platform.torch_device_type)
    left, softmax_scale, fp8 = window_left(spec.sliding_window), spec.softmax_scale, spec.fp8_kv
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
        if q.shape[0] == 0:  # nothing to attend (and no amax to take)
            return q.new_empty(q.shape)
        cum_kv = planned[1] if planned[0] is seq_lens else _cum_kv(seq_lens)
        query, bmm1, bmm2 = q.contiguous(), softmax_scale, 1.0
        if fp8:
            query, q_scale = quantize_query(query)
            bmm1, bmm2 = q_scale * k_scale.reshape(1) * softmax_scale, v_scale
        return trtllm_batch_context_with_kv_cache(
            query,
            (k_cache, v_cache),
            buffer,
            block_tables,
            seq_lens,
            max_seqlen_q,
            max_seq_len,
            bmm1,
            bmm2,
            seq_lens.shape[0],
            cu_seqlens_q,
            cum_kv,
            window_left=left,
            out_dtype=q.dtype,
            sinks=sinks,
            kv_layout="HND",
            causal=causal,
        )

    trtllm_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return trtllm_prefill
