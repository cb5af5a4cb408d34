"""attention.prefill with torch's own scaled_dot_product_attention over the NHD paged cache: the prefill an
Intel GPU gets with torch alone (no vllm-xpu-kernels, no IPEX), float32 included.

Per sequence b: its seq_lens[b] keys are gathered from the pages of its block-table row (write_kv has
already stored the new tokens), and its n_b new queries, at the last n_b positions, attend to them through a
boolean mask (causal and/or window, bottom-right aligned); SDPA broadcasts the KV heads (enable_gqa). The
host lists of query offsets and KV lengths are read once per forward in the plan.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.planning import Planned
from anyaccel.platforms.base import Platform

PREFILL = "xpu.sdpa_prefill"


def _mask(n: int, length: int, causal: bool, sliding_window: int, device) -> torch.Tensor:
    pos = torch.arange(length - n, length, device=device).unsqueeze(1)
    key = torch.arange(length, device=device).unsqueeze(0)
    seen = torch.ones(n, length, dtype=torch.bool, device=device)
    if causal:
        seen &= key <= pos
    if sliding_window > 0:
        seen &= key > pos - sliding_window
    return seen


def prefill(spec: AttentionSpec, platform: Platform):
    lists = Planned(lambda cu, lens: (cu.tolist(), lens.tolist()))

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.cu_seqlens_q is not None and meta.prefill_seq_lens is not None:
            meta.plans[PREFILL] = lists.plan(meta.cu_seqlens_q, meta.prefill_seq_lens)

    def sdpa_prefill(
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
        cu, lens = lists(cu_seqlens_q, seq_lens)
        out = torch.empty_like(q)
        block = k_cache.shape[1]
        for b, length in enumerate(lens):
            start, end = cu[b], cu[b + 1]
            if end == start:
                continue
            pages = block_tables[b, : -(-length // block)].long()
            keys = k_cache[pages].flatten(0, 1)[:length].transpose(0, 1)
            values = v_cache[pages].flatten(0, 1)[:length].transpose(0, 1)
            mask = _mask(end - start, length, causal, sliding_window, q.device)
            o = F.scaled_dot_product_attention(
                q[start:end].transpose(0, 1), keys, values, attn_mask=mask, scale=scale, enable_gqa=True
            )
            out[start:end] = o.transpose(0, 1)
        return out

    sdpa_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return sdpa_prefill
