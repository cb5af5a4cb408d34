"""Emulator of flash_attn.cute.flash_attn_varlen_func (flash-attn-4 4.0.0b36, flash_attn/cute/interface.py).

Forward only. q [total_q, Hq, D] with cu_seqlens_q; keys either varlen [total_k, Hkv, D] with cu_seqlens_k,
or paged [num_pages, page_size, Hkv, D] with page_table [B, max_pages] int32 and seqused_k [B] int32.
Causal masks align to the end of each sequence; window_size (left, right), None for unbounded;
learnable_sink [Hq] (fp16/bf16/fp32); softcap C > 0: C * tanh(s / C). Returns (out, lse) with out in q's
dtype and lse None unless asked for.

Arch limits as the interface asserts them (the emulated capability stands for the device):
    arch // 10 in 8..12; head dims on 9.x: 8..256, on 10.x/11.x: 8..128 or 256 (multiples of 8);
    fp8 inputs only on 10.x; on 12.x no paged KV (page_table must be None) and num_splits == 1.
Parameters past `return_lse` are not emulated (passing them raises TypeError); listed ones that are not
emulated raise NotImplementedError when given.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import arch
from ..attention_math import attend, gather_pages
from ..errors import not_emulated

DTYPES = (torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)
SINK_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _head_dims_ok(family: int, d: int) -> bool:
    if family == 9:
        return 8 <= d <= 256 and d % 8 == 0
    if family in (10, 11):
        return (8 <= d <= 128 or d == 256) and d % 8 == 0
    return d <= 256 and d % 8 == 0


def flash_attn_varlen_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    qv: torch.Tensor | None = None,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
    max_seqlen_q: int | None = None,
    max_seqlen_k: int | None = None,
    min_seqlen_k: int | None = None,
    seqused_q: torch.Tensor | None = None,
    seqused_k: torch.Tensor | None = None,
    gather_kv_indices: torch.Tensor | None = None,
    page_table: torch.Tensor | None = None,
    softmax_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int | None, int | None] = (None, None),
    learnable_sink: torch.Tensor | None = None,
    softcap: float = 0.0,
    num_splits: int = 1,
    pack_gqa: bool | None = None,
    deterministic: bool = False,
    score_mod: Any = None,
    score_mod_bwd: Any = None,
    mask_mod: Any = None,
    block_sparse_tensors: Any = None,
    aux_tensors: Any = None,
    aux_scalars: Any = None,
    return_lse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    api = "flash_attn_varlen_func"
    not_emulated(api, qv=(qv, None), seqused_q=(seqused_q, None), gather_kv_indices=(gather_kv_indices, None))
    not_emulated(api, score_mod=(score_mod, None), mask_mod=(mask_mod, None), return_lse=(return_lse, False))
    not_emulated(api, block_sparse_tensors=(block_sparse_tensors, None), aux_tensors=(aux_tensors, None))
    not_emulated(api, min_seqlen_k=(min_seqlen_k, None), aux_scalars=(aux_scalars, None))
    cc = arch.sm_version()
    family = cc // 10
    assert family in [8, 9, 10, 11, 12], (
        "Unsupported compute capability. Supported: 8.x, 9.x, 10.x, 11.x, 12.x"
    )
    assert cu_seqlens_q is not None and q.dim() == 3, "the emulator takes varlen q [total_q, Hq, D]"
    assert q.stride(-1) == 1 and k.stride(-1) == 1 and v.stride(-1) == 1, "last dims must be contiguous"
    batch = cu_seqlens_q.numel() - 1
    total_q, hq, d = q.shape
    assert cu_seqlens_q.dtype == torch.int32 and int(cu_seqlens_q[-1]) == total_q, "cu_seqlens_q"
    if page_table is not None:
        assert cu_seqlens_k is None, "page_table is not supported with cu_seqlens_k"
        assert page_table.dtype == torch.int32, "page_table must be int32"
        assert page_table.stride(-1) == 1, "page_table must be contiguous in the last dimension"
        assert page_table.shape[0] == batch
        assert k.dim() == 4 and v.shape == k.shape, "paged k/v: (num_pages, page_size, nheads_k, d)"
        assert seqused_k is not None and seqused_k.dtype == torch.int32 and seqused_k.shape == (batch,)
        hkv = k.shape[2]
    else:
        assert cu_seqlens_k is not None and cu_seqlens_k.shape == (batch + 1,), "cu_seqlens_k: (batch + 1,)"
        assert cu_seqlens_k.dtype == torch.int32
        assert k.dim() == 3 and v.shape == k.shape
        hkv = k.shape[1]
    assert v.dtype in DTYPES, "inputs must be fp16, bf16 or fp8"
    assert all(t.dtype == v.dtype for t in (q, k)), "q, k and v must share a dtype"
    assert hq % hkv == 0, "num_head must be divisible by num_head_kv"
    if family in (9, 10, 11):
        assert _head_dims_ok(family, d), f"(head_dim, head_dim_v)=({d}, {d}) is not supported on SM{cc}"
    if v.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        assert family == 10, "FP8 is only supported on SM100 (compute capability 10.x) for FA4 CuTe."
    if family == 12:
        assert num_splits <= 1, "SM120 forward only supports num_splits=1"
        assert page_table is None, "Paged KV not supported on SM 12.0 in this PR"
    if learnable_sink is not None:
        assert learnable_sink.shape == (hq,) and learnable_sink.dtype in SINK_DTYPES
    left, right = window_size
    if left is not None and right is not None and left < 0 and right < 0:
        left = right = None
    if causal:
        right = 0
    if right not in (None, 0):
        raise NotImplementedError(f"{api}: a right window other than 0 is not emulated")
    scale = softmax_scale if softmax_scale is not None else d**-0.5
    out = torch.zeros(q.shape, dtype=torch.float32)
    for b in range(batch):
        lo, hi = int(cu_seqlens_q[b]), int(cu_seqlens_q[b + 1])
        if page_table is not None:
            assert seqused_k is not None
            length = int(seqused_k[b])
            keys = gather_pages(k, "NHD", page_table[b], length)
            values = gather_pages(v, "NHD", page_table[b], length)
        else:
            assert cu_seqlens_k is not None
            klo, khi = int(cu_seqlens_k[b]), int(cu_seqlens_k[b + 1])
            keys, values = k[klo:khi].float(), v[klo:khi].float()
        out[lo:hi] = attend(
            q[lo:hi],
            keys,
            values,
            scale=scale,
            causal=right == 0,
            window_left=-1 if left is None else left,
            softcap=softcap,
            sinks=learnable_sink,
        )
    out_dtype = torch.bfloat16 if q.dtype in (torch.float8_e4m3fn, torch.float8_e5m2) else q.dtype
    return out.to(out_dtype), None
