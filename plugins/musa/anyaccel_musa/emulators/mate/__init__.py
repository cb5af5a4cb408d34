"""Emulator of MATE's FlashAttention-3-compatible attention (MooreThreads/mate @ 3f58cc3,
mate/mha_interface.py; argument checks of mate/jit/attention/fmha/fmha_fwd.py; surface of
docs/flash_attention.md).

flash_attn_varlen_func(q [total_q, Hq, D], k, v, cu_seqlens_q, ..., seqused_k, page_table, ...) and
flash_attn_with_kvcache(q [B, S, Hq, D] or [total_q, Hq, D] with cu_seqlens_q, k_cache, v_cache,
cache_seqlens, page_table, ...): paged KV [num_pages, page_size, Hkv, D]; causal masks aligned to the end of
each sequence; window_size (left, right), -1 unbounded; learnable_sink bfloat16 [Hq]; softcap C > 0:
C * tanh(s / C). Returns out in q's dtype (and the log-sum-exp when asked, which is not emulated).

get_scheduler_metadata(...) returns an int32 tensor; the real one is an opaque tile schedule computed from
the batch's lengths and the attention's shape. The emulated one records them, and both attention functions
reject metadata that was prepared for other lengths, heads, head dim, page size or masks: running with a
stale schedule is what a plan phase can get wrong.

MATE ships kernels for mp31 only (README, csrc/mubin/mp31): any other emulated architecture raises.
Not emulated (NotImplementedError when given): appending new k/v, rotary, qv, descales, cache_batch_idx,
cache_leftpad, seqused_q, attention_chunk, context parallelism, return_softmax_lse, out, a right window
other than 0 or -1, varlen (unpaged) keys.
"""

from __future__ import annotations

from typing import Any

import torch

from anyaccel.emulated_attention import attend, gather_pages

from .._arch import arch
from . import deep_gemm

__all__ = ["deep_gemm", "flash_attn_varlen_func", "flash_attn_with_kvcache", "get_scheduler_metadata"]
__version__ = "0.0+anyaccel.emulated"

DTYPES = (torch.float16, torch.bfloat16)
MAX_HEAD_DIM = 512
_HEADER = 11  # scheduler metadata: the fields below, then seqused_k


def _not_emulated(api: str, **given: tuple[Any, Any]) -> None:
    for name, (value, default) in given.items():
        if (value is not None) if default is None else bool(value != default):
            raise NotImplementedError(f"{api}: argument {name}={value!r} is not emulated")


def _check_arch() -> None:
    assert arch() == 31, f"MATE ships kernels for MP31 only; this device is mp_{arch()}"


def _int32_vector(t: torch.Tensor | None, name: str, length: int) -> None:
    if t is None:
        return
    assert t.dtype == torch.int32, f"{name} must be int32"
    assert t.dim() == 1 and t.stride(0) == 1, f"{name} must be contiguous"
    assert t.shape == (length,), f"{name} must have shape ({length},)"


def _resolve_window(causal: bool, window_size) -> tuple[int, int]:
    left, right = (-1, -1) if window_size is None else (int(window_size[0]), int(window_size[1]))
    if causal:
        right = 0
    if right not in (-1, 0):
        raise NotImplementedError(f"window_size right={right} is not emulated")
    return left, right


def _metadata_fields(batch, max_q, hq, hkv, d, page_size, causal, left, right, has_softcap) -> list[int]:
    return [batch, max_q, hq, hkv, d, page_size, int(causal), left, right, int(has_softcap), 0]


def get_scheduler_metadata(
    batch_size,
    max_seqlen_q,
    max_seqlen_k,
    num_heads_q,
    num_heads_kv,
    headdim,
    seqused_q: torch.Tensor | None = None,
    seqused_k: torch.Tensor | None = None,
    qkv_dtype=torch.bfloat16,
    headdim_v=None,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
    cu_seqlens_k_new: torch.Tensor | None = None,
    cache_leftpad: torch.Tensor | None = None,
    page_size=None,
    max_seqlen_k_new=0,
    causal=False,
    window_size=(-1, -1),
    attention_chunk=0,
    has_softcap=False,
    num_splits=0,
    pack_gqa=None,
    mp_margin=0,
) -> torch.Tensor:
    api = "get_scheduler_metadata"
    _not_emulated(api, seqused_q=(seqused_q, None), cu_seqlens_k=(cu_seqlens_k, None))
    _not_emulated(api, cu_seqlens_k_new=(cu_seqlens_k_new, None), cache_leftpad=(cache_leftpad, None))
    _not_emulated(api, attention_chunk=(attention_chunk, 0), max_seqlen_k_new=(max_seqlen_k_new, 0))
    _check_arch()
    assert qkv_dtype in DTYPES, "inputs must be float16 or bfloat16"
    assert headdim_v in (None, headdim), "headdim_v other than headdim is not emulated"
    assert seqused_k is not None, "the emulator schedules paged batches: seqused_k is required"
    _int32_vector(seqused_k, "seqused_k", batch_size)
    _int32_vector(cu_seqlens_q, "cu_seqlens_q", batch_size + 1)
    assert seqused_k.numel() == 0 or int(seqused_k.max()) <= max_seqlen_k, "seqused_k exceeds max_seqlen_k"
    left, right = _resolve_window(bool(causal), window_size)
    fields = _metadata_fields(
        batch_size,
        max_seqlen_q,
        num_heads_q,
        num_heads_kv,
        headdim,
        page_size or 1,
        causal,
        left,
        right,
        has_softcap,
    )
    return torch.cat([torch.tensor(fields, dtype=torch.int32), seqused_k.to(torch.int32)])


def _check_metadata(meta: torch.Tensor, fields: list[int], seqused_k: torch.Tensor) -> None:
    assert meta.dtype == torch.int32 and meta.dim() == 1, "scheduler_metadata must be int32"
    recorded = meta[:_HEADER].tolist()
    assert recorded == fields, (
        f"scheduler_metadata was prepared for (batch, max_seqlen_q, Hq, Hkv, D, page_size, causal, "
        f"window_left, window_right, softcap) {recorded[:10]}, this call is {fields[:10]}"
    )
    assert torch.equal(meta[_HEADER:], seqused_k.to(torch.int32)), (
        "scheduler_metadata was prepared for other sequence lengths"
    )


def _paged_attention(
    api,
    q,
    k,
    v,
    cu_seqlens_q,
    max_seqlen_q,
    seqused_k,
    page_table,
    softmax_scale,
    causal,
    window_size,
    learnable_sink,
    softcap,
    scheduler_metadata,
) -> torch.Tensor:
    """The checks of fmha_fwd.py for a varlen query over a paged cache, then the attention."""
    _check_arch()
    assert q.dtype in DTYPES, "inputs must be float16 or bfloat16"
    assert q.dtype == k.dtype == v.dtype, "inputs must have the same dtype"
    assert q.stride(-1) == 1 and k.stride(-1) == 1 and v.stride(-1) == 1, "last dims must be contiguous"
    assert cu_seqlens_q is not None and max_seqlen_q is not None, "varlen q needs cu_seqlens_q, max_seqlen_q"
    assert page_table is not None, "the emulator reads paged KV: page_table is required"
    batch = cu_seqlens_q.shape[0] - 1
    total_q, hq, d = q.shape
    num_pages, page_size, hkv, dk = k.shape
    assert page_table.dtype == torch.int32, "page_table must be int32"
    assert page_table.stride(-1) == 1, "page_table must be contiguous"
    assert page_table.dim() == 2 and page_table.shape[0] == batch, "page_table: (batch_size, max_pages)"
    assert dk == d and v.shape == k.shape, "k, v: (num_pages, page_size, num_head_kv, head_dim)"
    assert d <= MAX_HEAD_DIM, f"head dim {d}: MATE supports head dims up to 512"
    assert hq % hkv == 0, "num_head must be divisible by num_head_kv"
    _int32_vector(cu_seqlens_q, "cu_seqlens_q", batch + 1)
    _int32_vector(seqused_k, "seqused_k", batch)
    assert int(cu_seqlens_q[-1]) == total_q, "cu_seqlens_q[-1] must equal total_q"
    if learnable_sink is not None:
        assert learnable_sink.shape == (hq,)
        assert learnable_sink.dtype == torch.bfloat16, "learnable_sink must be bfloat16"
        scheduler_metadata = None  # fmha_fwd.py drops it with a sink
    left, right = _resolve_window(causal, window_size)
    if scheduler_metadata is not None:
        shape = (batch, max_seqlen_q, hq, hkv, d, page_size)
        fields = _metadata_fields(*shape, causal, left, right, softcap > 0)
        _check_metadata(scheduler_metadata, fields, seqused_k)
    scale = softmax_scale if softmax_scale is not None else d**-0.5
    out = torch.zeros(q.shape, dtype=torch.float32)
    for b in range(batch):
        lo, hi = int(cu_seqlens_q[b]), int(cu_seqlens_q[b + 1])
        assert hi - lo <= max_seqlen_q, "a sequence longer than max_seqlen_q"
        length = int(seqused_k[b])
        keys = gather_pages(k, "NHD", page_table[b], length)
        values = gather_pages(v, "NHD", page_table[b], length)
        out[lo:hi] = attend(
            q[lo:hi],
            keys,
            values,
            scale=scale,
            causal=right == 0,
            window_left=left,
            softcap=softcap,
            sinks=learnable_sink,
        )
    return out.to(q.dtype)


def flash_attn_varlen_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
    max_seqlen_q: int | None = None,
    max_seqlen_k: int | None = None,
    seqused_q: torch.Tensor | None = None,
    seqused_k: torch.Tensor | None = None,
    page_table: torch.Tensor | None = None,
    softmax_scale: float | None = None,
    causal: bool = False,
    qv: torch.Tensor | None = None,
    q_descale: torch.Tensor | None = None,
    k_descale: torch.Tensor | None = None,
    v_descale: torch.Tensor | None = None,
    window_size=(-1, -1),
    learnable_sink: torch.Tensor | None = None,
    attention_chunk: int | None = 0,
    softcap: float = 0.0,
    scheduler_metadata: torch.Tensor | None = None,
    num_splits: int = 0,
    pack_gqa=None,
    deterministic: bool = False,
    sm_margin=0,
    return_softmax_lse: bool = False,
    backend: str = "auto",
    cp_world_size: int = 1,
    cp_rank: int = 0,
    cp_tot_seqused_k: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
):
    api = "flash_attn_varlen_func"
    _not_emulated(api, cu_seqlens_k=(cu_seqlens_k, None), seqused_q=(seqused_q, None), qv=(qv, None))
    _not_emulated(api, q_descale=(q_descale, None), k_descale=(k_descale, None), v_descale=(v_descale, None))
    _not_emulated(api, attention_chunk=(attention_chunk or 0, 0), lse=(return_softmax_lse, False))
    _not_emulated(api, cp_world_size=(cp_world_size, 1), cp_tot_seqused_k=(cp_tot_seqused_k, None))
    _not_emulated(api, out=(out, None))
    assert backend in ("auto", "mutlass", "mubin"), f"unknown backend {backend!r}"
    assert seqused_k is not None, "paged KV needs seqused_k"
    return _paged_attention(
        api,
        q,
        k,
        v,
        cu_seqlens_q,
        max_seqlen_q,
        seqused_k,
        page_table,
        softmax_scale,
        causal,
        window_size,
        learnable_sink,
        softcap,
        scheduler_metadata,
    )


def flash_attn_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: torch.Tensor | None = None,
    v: torch.Tensor | None = None,
    qv: torch.Tensor | None = None,
    rotary_cos: torch.Tensor | None = None,
    rotary_sin: torch.Tensor | None = None,
    cache_seqlens: int | torch.Tensor | None = None,
    cache_batch_idx: torch.Tensor | None = None,
    cache_leftpad: torch.Tensor | None = None,
    page_table: torch.Tensor | None = None,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k_new: torch.Tensor | None = None,
    max_seqlen_q: int | None = None,
    rotary_seqlens: torch.Tensor | None = None,
    q_descale: torch.Tensor | None = None,
    k_descale: torch.Tensor | None = None,
    v_descale: torch.Tensor | None = None,
    softmax_scale: float | None = None,
    causal: bool = False,
    window_size=(-1, -1),
    learnable_sink: torch.Tensor | None = None,
    attention_chunk: int | None = 0,
    softcap: float = 0.0,
    rotary_interleaved: bool = True,
    scheduler_metadata: torch.Tensor | None = None,
    num_splits: int = 0,
    pack_gqa=None,
    sm_margin=0,
    return_softmax_lse: bool = False,
    cp_world_size: int = 1,
    cp_rank: int = 0,
    cp_tot_seqused_k: torch.Tensor | None = None,
):
    api = "flash_attn_with_kvcache"
    assert k_cache.stride(-1) == 1, "k_cache must have contiguous last dimension"
    assert v_cache.stride(-1) == 1, "v_cache must have contiguous last dimension"
    _not_emulated(api, k=(k, None), v=(v, None), qv=(qv, None), rotary_cos=(rotary_cos, None))
    _not_emulated(api, cache_batch_idx=(cache_batch_idx, None), cache_leftpad=(cache_leftpad, None))
    _not_emulated(api, cu_seqlens_k_new=(cu_seqlens_k_new, None), rotary_seqlens=(rotary_seqlens, None))
    _not_emulated(api, q_descale=(q_descale, None), k_descale=(k_descale, None), v_descale=(v_descale, None))
    _not_emulated(api, attention_chunk=(attention_chunk or 0, 0), lse=(return_softmax_lse, False))
    _not_emulated(api, cp_world_size=(cp_world_size, 1), cp_tot_seqused_k=(cp_tot_seqused_k, None))
    assert cache_seqlens is not None, "the emulator reads paged caches: cache_seqlens is required"
    if isinstance(cache_seqlens, int):
        cache_seqlens = torch.full((k_cache.shape[0],), cache_seqlens, dtype=torch.int32)
    if cu_seqlens_q is None:
        assert q.dim() == 4, "q: (batch_size, seqlen, nheads, headdim) without cu_seqlens_q"
        batch, seqlen = q.shape[:2]
        cu = torch.arange(0, (batch + 1) * seqlen, seqlen, dtype=torch.int32)
        out = _paged_attention(
            api,
            q.reshape(batch * seqlen, *q.shape[2:]),
            k_cache,
            v_cache,
            cu,
            seqlen,
            cache_seqlens,
            page_table,
            softmax_scale,
            causal,
            window_size,
            learnable_sink,
            softcap,
            scheduler_metadata,
        )
        return out.view(q.shape)
    return _paged_attention(
        api,
        q,
        k_cache,
        v_cache,
        cu_seqlens_q,
        max_seqlen_q,
        cache_seqlens,
        page_table,
        softmax_scale,
        causal,
        window_size,
        learnable_sink,
        softcap,
        scheduler_metadata,
    )
