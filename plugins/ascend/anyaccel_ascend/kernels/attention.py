"""attention.prefill and attention.decode through torch_npu.npu_fused_infer_attention_score (Atlas A2/A3),
and its _v2 variant when the layer has sinks; attention.write_kv through npu_scatter_pa_kv_cache.

Bind (the factory, once per spec): the 2048x2048 compressed causal mask sparse modes 3 and 4 read, the
cache view (NHD as the free (blocknum, blocksize, Hkv*D) view, HND as (blocknum, Hkv, blocksize, D): the
two cache forms FIA reads with a TND query), the sparse mode and band from the spec's window.
Plan (`anyaccel_plan(meta)`, once per forward, not per layer): the host lists FIA takes, the cumulative
query lengths and per-sequence KV lengths (one device-to-host copy per batch, as vllm-ascend does). A call
whose length tensors were not planned (a direct call, the conformance kit) builds them itself.
Run (every layer): one FIA call on the packed TND query; decode is TND with one token per sequence.

Contract mapping: our `sliding_window` W counts W keys including the query's own; FIA's band keeps keys
p - pre_tokens <= j <= p + next_tokens, so pre_tokens = W - 1 and next_tokens = 0 (sparse mode 4).
Non-causal prefill: sparse mode 0 without a mask. Sinks (float32 [Hq]) become the bfloat16 learnable_sink
once per sinks tensor. Decode rows with seq_lens 0 have no keys and come back as zeros.
"""

from __future__ import annotations

from typing import Any

import torch
import torch_npu

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.platforms.base import Platform

from .. import gates
from .planned import Converted, Planned, kept_slots

PREFILL = "npu.fused_infer_attention_prefill"
DECODE = "npu.fused_infer_attention_decode"


def causal_mask(device: torch.device | str) -> torch.Tensor:
    """The compressed mask sparse modes 2-4 take: 2048x2048 bool, True strictly above the diagonal."""
    ones = torch.ones(gates.MASK_SIZE, gates.MASK_SIZE, dtype=torch.bool, device=device)
    return torch.triu(ones, diagonal=1)


def _cache_view(spec: AttentionSpec):
    if spec.kv_layout == "NHD":
        return lambda cache: cache.flatten(2, 3)  # (blocknum, blocksize, Hkv*D): a free view
    return lambda cache: cache  # HND: (blocknum, Hkv, blocksize, D) as it is


def _modes(spec: AttentionSpec, causal: bool) -> dict[str, Any]:
    if spec.sliding_window > 0:
        return {"sparse_mode": gates.SPARSE_BAND, "pre_tokens": spec.sliding_window - 1, "next_tokens": 0}
    if causal:
        return {"sparse_mode": gates.SPARSE_CAUSAL}
    return {"sparse_mode": 0}


def _call(spec: AttentionSpec, q, k_cache, v_cache, block_tables, q_cum, kv_lens, mask, modes, sink, scale):
    common = dict(
        atten_mask=mask if modes["sparse_mode"] else None,
        block_table=block_tables,
        block_size=spec.block_size,
        input_layout="TND",
        num_key_value_heads=spec.num_kv_heads,
        pre_tokens=modes.get("pre_tokens", 2147483647),
        next_tokens=modes.get("next_tokens", 2147483647),
        sparse_mode=modes["sparse_mode"],
    )
    if sink is not None:
        out, _ = torch_npu.npu_fused_infer_attention_score_v2(
            q,
            k_cache,
            v_cache,
            actual_seq_qlen=q_cum,
            actual_seq_kvlen=kv_lens,
            learnable_sink=sink,
            num_query_heads=spec.num_q_heads,
            softmax_scale=scale,
            **common,
        )
    else:
        out, _ = torch_npu.npu_fused_infer_attention_score(
            q,
            k_cache,
            v_cache,
            actual_seq_lengths=q_cum,
            actual_seq_lengths_kv=kv_lens,
            num_heads=spec.num_q_heads,
            scale=scale,
            **common,
        )
    return out


def prefill(spec: AttentionSpec, platform: Platform):
    mask = causal_mask(platform.torch_device_type)
    view = _cache_view(spec)
    modes = _modes(spec, spec.causal)
    sink_of = Converted(lambda s: s.to(gates.SINK_DTYPE))
    lengths = Planned(lambda cu, lens: (cu[1:].tolist(), lens.tolist()))

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.cu_seqlens_q is not None and meta.prefill_seq_lens is not None:
            meta.plans[PREFILL] = lengths.plan(meta.cu_seqlens_q, meta.prefill_seq_lens)

    def fia_prefill(
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
        q_cum, kv_lens = lengths(cu_seqlens_q, seq_lens)
        return _call(
            spec,
            q.contiguous(),
            view(k_cache),
            view(v_cache),
            block_tables,
            q_cum,
            kv_lens,
            mask,
            modes if causal == spec.causal else _modes(spec, causal),
            sink_of(sinks),
            scale,
        )

    fia_prefill.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return fia_prefill


def decode(spec: AttentionSpec, platform: Platform):
    mask = causal_mask(platform.torch_device_type)
    view = _cache_view(spec)
    # one query per sequence sees its whole history: no mask unless a window cuts it (band, mode 4)
    modes = _modes(spec, causal=False)
    sink_of = Converted(lambda s: s.to(gates.SINK_DTYPE))
    lengths = Planned(lambda lens: (list(range(1, lens.numel() + 1)), lens.tolist()))

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        if meta.decode_seq_lens is not None:
            meta.plans[DECODE] = lengths.plan(meta.decode_seq_lens)

    def fia_decode(
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
        q_cum, kv_lens = lengths(seq_lens)
        return _call(
            spec,
            q.contiguous(),
            view(k_cache),
            view(v_cache),
            block_tables,
            q_cum,
            kv_lens,
            mask,
            modes,
            sink_of(sinks),
            scale,
        )

    fia_decode.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return fia_decode


def write_kv(spec: AttentionSpec, platform: Platform):
    """npu_scatter_pa_kv_cache on the NHD cache ("Norm" mode). The slots must be valid (no -1): the padded
    tokens are dropped first, with the kept indices computed once per forward in the plan."""
    kept = Planned(kept_slots)

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        kept.plan(meta.slot_mapping)

    def scatter_kv(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        keep = kept(slot_mapping)
        if keep is not None:
            k, v, slot_mapping = k[keep], v[keep], slot_mapping[keep]
        torch_npu.npu_scatter_pa_kv_cache(
            k.contiguous(), v.contiguous(), k_cache, v_cache, slot_mapping, cache_mode="Norm"
        )

    scatter_kv.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return scatter_kv
