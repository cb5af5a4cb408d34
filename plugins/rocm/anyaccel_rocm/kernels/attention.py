"""Attention through AITER: varlen prefill (flash_attn_varlen_func), paged decode (paged_attention_v1 on
NHD caches, pa_fwd_asm on the AITER_PA_ASM layouts) and KV writes into each layout. Factories: everything
fixed by the spec (the window, the kv dtype string, the gather for prefix pages) is decided once per
binding; a call maps the contract's arguments and calls AITER."""

from __future__ import annotations

import math
from collections.abc import Callable

import aiter
import torch

from anyaccel.platforms.base import Platform

from ..layouts import NAME as PA_ASM_LAYOUT
from ..layouts import NAME_8BIT as PA_ASM_8BIT_LAYOUT
from . import warmup
from .warmup import attach

Gather = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _window(spec) -> tuple[int, int, int]:
    """The contract's W (query i sees i - W < j <= i) as AITER's (left, right, sink): (W - 1, 0, 0)."""
    return (spec.sliding_window - 1, 0, 0) if spec.sliding_window > 0 else (-1, -1, 0)


def _gather_nhd(k_cache, v_cache, blocks, offsets):
    return k_cache[blocks, offsets], v_cache[blocks, offsets]


def _gather_pa_asm(k_cache, v_cache, blocks, offsets):
    """Tokens out of K [N, Hkv, D/x, bs, x] and V [N, Hkv, bs/x, D, x] as [T, Hkv, D]."""
    x = k_cache.shape[-1]
    keys = k_cache[blocks, :, :, offsets, :].flatten(2)
    values = v_cache[blocks, :, offsets // x, :, offsets % x]
    return keys, values


GATHERS: dict[str, Gather] = {
    "NHD": _gather_nhd,
    PA_ASM_LAYOUT: _gather_pa_asm,
    PA_ASM_8BIT_LAYOUT: _gather_pa_asm,
}


def _history(spec, gather: Gather, k_cache, v_cache, block_tables, seq_lens, k_scale, v_scale):
    """Every sequence's cached tokens (prefix and new) packed as [sum(seq_lens), Hkv, D] in spec.dtype, with
    cu_seqlens_k. Prefix-cache prefill only; the total is read on the host once per call."""
    bs = spec.block_size
    lens = seq_lens.long()
    total = int(lens.sum())
    cu = torch.zeros(lens.numel() + 1, dtype=torch.int32, device=seq_lens.device)
    cu[1:] = torch.cumsum(lens, 0)
    seq = torch.repeat_interleave(torch.arange(lens.numel(), device=lens.device), lens, output_size=total)
    pos = torch.arange(total, device=lens.device) - cu[:-1].long()[seq]
    blocks = block_tables[seq, pos // bs].long()
    k, v = gather(k_cache, v_cache, blocks, pos % bs)
    if spec.fp8_kv:  # dequantize: the cache holds k / k_scale
        k, v = (k.to(torch.float32) * k_scale).to(spec.dtype), (v.to(torch.float32) * v_scale).to(spec.dtype)
    return k, v, cu


def prefill(spec, platform: Platform):
    """attention.prefill -> aiter.flash_attn_varlen_func (causal aligned bottom-right). With spec.prefix the
    sequences' whole histories are gathered from the cache (vLLM's ROCM_AITER_FA does the same for chunked
    prefill); without, the new tokens' k/v are attended directly."""
    window = _window(spec)
    gather = GATHERS[spec.kv_layout]
    prefix = spec.prefix

    def run(
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
        if prefix:
            k, v, cu_k = _history(spec, gather, k_cache, v_cache, block_tables, seq_lens, k_scale, v_scale)
            max_k = max_seq_len
        else:
            cu_k, max_k = cu_seqlens_q, max_seqlen_q
        return aiter.flash_attn_varlen_func(
            q,
            k,
            v,
            cu_seqlens_q,
            cu_k,
            max_seqlen_q,
            max_k,
            softmax_scale=scale,
            logits_soft_cap=softcap,
            causal=causal,
            window_size=window,
            sink_ptr=sinks,
        )

    return attach(run, warmup.prefill)


class _Workspace:
    """paged_attention_v1's scratch (op_tests/test_pa_v1.py sizing), grown when a call needs more; and the
    query start offsets of one-token rows."""

    def __init__(self, head_dim: int, num_q_heads: int, partition: int):
        self.d, self.h, self.partition = head_dim, num_q_heads, partition
        self.buffer: torch.Tensor | None = None
        self.starts: torch.Tensor | None = None

    def get(self, q: torch.Tensor, max_seq_len: int) -> torch.Tensor:
        parts = max(1, math.ceil(max_seq_len / self.partition))
        rows = q.shape[0] * self.h * parts
        need = rows * self.d * q.element_size() + 2 * rows * 4
        if self.buffer is None or self.buffer.numel() < need or self.buffer.device != q.device:
            self.buffer = torch.empty(need, dtype=torch.uint8, device=q.device)
        return self.buffer

    def query_starts(self, q: torch.Tensor) -> torch.Tensor:
        b = q.shape[0]
        if self.starts is None or self.starts.numel() < b + 1 or self.starts.device != q.device:
            self.starts = torch.arange(b + 1, dtype=torch.int32, device=q.device)
        return self.starts[: b + 1]


def paged_decode(spec, platform: Platform):
    """attention.decode on an NHD cache -> aiter.paged_attention_v1 (HIP kernel, 256-token partitions)."""
    from ..gates import PA_V1_PARTITION

    kv_cache_dtype = "fp8" if spec.fp8_kv else "auto"
    workspace = _Workspace(spec.head_dim, spec.num_q_heads, PA_V1_PARTITION)

    def run(
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
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        aiter.paged_attention_v1(
            out,
            workspace.get(q, max_seq_len),
            q,
            k_cache,
            v_cache,
            scale,
            block_tables,
            workspace.query_starts(q),
            seq_lens,
            max_seq_len,
            None,
            kv_cache_dtype,
            "NHD",
            softcap,
            k_scale,
            v_scale,
        )
        # the contract's padding rows (seq_lens 0) are zeros; AITER does not promise anything for them
        return out.masked_fill_((seq_lens == 0).view(-1, 1, 1), 0)

    return attach(run, warmup.decode)


class _TokenScales:
    """pa_fwd_asm reads an 8-bit cache's scales per token, float32 [num_blocks, Hkv, block_size]
    (op_tests/test_pa.py passes a per-tensor scale as that tensor filled with it). The contract's scales
    are per-layer constants of shape [1], set at load: each layer's pair is expanded once, on its first
    call, and kept together with the scale tensors it came from, so their addresses stay theirs."""

    def __init__(self) -> None:
        self.made: dict[tuple[int, ...], tuple[torch.Tensor, ...]] = {}

    def get(self, k_cache, k_scale, v_scale) -> tuple[torch.Tensor, torch.Tensor]:
        n, h, _, bs, _ = k_cache.shape
        key = (k_scale.data_ptr(), v_scale.data_ptr(), n, h, bs)
        hit = self.made.get(key)
        if hit is None:
            per_token = [s.reshape(1, 1, 1).expand(n, h, bs).contiguous() for s in (k_scale, v_scale)]
            hit = self.made[key] = (k_scale, v_scale, *per_token)
        return hit[2], hit[3]


def pa_asm_decode(spec, platform: Platform):
    """attention.decode on the AITER_PA_ASM / AITER_PA_ASM_8BIT cache -> aiter.pa_fwd_asm. The kernel's
    softmax scale is fixed at 1/sqrt(head_dim), so another scale is folded into q (one multiply, skipped
    when it is 1). fp8 caches pass the layer's k_scale/v_scale as per-token scales."""
    root = spec.head_dim**0.5
    scales = _TokenScales() if spec.fp8_kv else None

    def run(
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
        factor = scale * root
        if abs(factor - 1.0) > 1e-6:
            q = q * factor
        elif q.stride(1) != q.shape[2] or q.stride(2) != 1:  # rows may be strided, heads must be packed
            q = q.contiguous()
        k_q, v_q = scales.get(k_cache, k_scale, v_scale) if scales is not None else (None, None)
        out = aiter.pa_fwd_asm(
            q, k_cache, v_cache, block_tables, seq_lens, block_tables.stride(0), K_QScale=k_q, V_QScale=v_q
        )
        return out.masked_fill_((seq_lens == 0).view(-1, 1, 1), 0)

    return attach(run, warmup.decode)


def write_kv(spec, platform: Platform):
    """attention.write_kv into an NHD cache -> aiter.reshape_and_cache_flash (slots < 0 skipped)."""
    kv_cache_dtype = "fp8" if spec.fp8_kv else "auto"
    ones: dict[torch.device, torch.Tensor] = {}

    def run(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        if k_scale is None:  # the scales are required arguments; "auto" caches ignore them
            one = ones.get(k.device)
            if one is None:
                one = ones[k.device] = torch.ones(1, dtype=torch.float32, device=k.device)
            k_scale = v_scale = one
        aiter.reshape_and_cache_flash(k, v, k_cache, v_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale)

    return attach(run, warmup.write_kv)


def write_kv_pa_asm(spec, platform: Platform):
    """attention.write_kv into the AITER_PA_ASM / AITER_PA_ASM_8BIT cache ->
    aiter.reshape_and_cache(asm_layout=True); fp8 caches store k / k_scale."""
    kv_cache_dtype = "fp8" if spec.fp8_kv else "auto"

    def run(k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None):
        aiter.reshape_and_cache(
            k, v, k_cache, v_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale, asm_layout=True
        )

    return attach(run, warmup.write_kv)
