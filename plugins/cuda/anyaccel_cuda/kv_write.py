"""attention.write_kv through FlashInfer's append_paged_kv_cache.

Our slot mapping becomes FlashInfer's append description with one single-page "request" per stored token:
batch_indices = 0..n-1, positions = slot % block_size, kv_indices = slot // block_size, kv_indptr = 0..n,
last_page_len = position + 1. Padded tokens (slot -1) are dropped. Building this selects the valid slots
(one host sync), so it is done in the plan, once per forward; a call with an unplanned slot mapping builds
it itself. fp8 caches store k / k_scale saturated to +-448 and rounded to e4m3fn, done here before the append
(FlashInfer appends values already in the cache dtype).
"""

from __future__ import annotations

from typing import Any

import torch
from flashinfer.page import append_paged_kv_cache

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.platforms.base import Platform

NAME = "flashinfer.write_kv"


def _describe(slot_mapping: torch.Tensor, block_size: int) -> dict[str, torch.Tensor]:
    keep = (slot_mapping >= 0).nonzero().squeeze(1)
    slots = slot_mapping[keep]
    n = keep.numel()
    steps = torch.arange(n + 1, dtype=torch.int32, device=slot_mapping.device)
    offsets = (slots % block_size).to(torch.int32)
    return {
        "keep": keep,
        "batch_indices": steps[:n],
        "positions": offsets,
        "kv_indices": (slots // block_size).to(torch.int32),
        "kv_indptr": steps,
        "kv_last_page_len": offsets + 1,
    }


def write_kv(spec: AttentionSpec, platform: Platform):
    planned: list[Any] = [None, None]  # (slot_mapping, description)
    fp8 = spec.fp8_kv
    limit = torch.finfo(spec.cache_dtype).max if fp8 else 0.0

    def anyaccel_plan(meta: AttentionMetadata) -> None:
        planned[:] = [meta.slot_mapping, _describe(meta.slot_mapping, spec.block_size)]
        meta.plans[NAME] = planned[1]

    def append_kv(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        d = planned[1] if planned[0] is slot_mapping else _describe(slot_mapping, spec.block_size)
        keys, values = k[d["keep"]], v[d["keep"]]
        if fp8:
            keys = (keys.float() / k_scale).clamp_(-limit, limit).to(spec.cache_dtype)
            values = (values.float() / v_scale).clamp_(-limit, limit).to(spec.cache_dtype)
        append_paged_kv_cache(
            keys,
            values,
            d["batch_indices"],
            d["positions"],
            (k_cache, v_cache),
            d["kv_indices"],
            d["kv_indptr"],
            d["kv_last_page_len"],
            kv_layout=spec.kv_layout,
        )

    append_kv.anyaccel_plan = anyaccel_plan  # type: ignore[attr-defined]
    return append_kv
