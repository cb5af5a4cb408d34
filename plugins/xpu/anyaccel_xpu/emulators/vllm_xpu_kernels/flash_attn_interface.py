"""Emulated vllm_xpu_kernels.flash_attn_interface.flash_attn_varlen_func (FA version 2 over
torch.ops._vllm_fa2_C.varlen_fwd): the Python wrapper's asserts and the C++ checks of
csrc/flash_attn/flash_api.cpp and csrc/xpu/attn/, then the documented attention in float32.

Semantics: sequence b has n_b = cu_seqlens_q[b+1] - cu_seqlens_q[b] queries at the last n_b of its
L_b keys (seqused_k[b] with a paged cache [P, block_size, Hkv, D] read through block_table[b]; or
cu_seqlens_k differences with packed k/v); window_size (left, right) keeps keys p - left <= j <= p + right
(-1: open); s_aux [Hq] adds one logit per head; fp8 k/v are multiplied by k/v_descale. Not emulated
(NotImplementedError): alibi, dropout, q_v, return_softmax_lse.
"""

from __future__ import annotations

import torch

from anyaccel.emulated_attention import attend_visible, gather_pages, visible

from .. import arch
from ..arch import check

FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)
HEAD_CASES = 512  # fmha_xe2.cpp max_head_size (the decode path takes 576)


def _descale(descale, name):
    """_normalize_descale_tensor: a float32/bfloat16/float16 view of ONE scalar (its storage holds one)."""
    if descale is None:
        return None
    assert descale.dtype in (torch.float32, torch.bfloat16, torch.float16), (
        f"{name} must be a float32 or bfloat16 or float16 scalar tensor view"
    )
    assert descale.untyped_storage().nbytes() == descale.element_size(), (
        f"{name} must be view of single scalar tensor"
    )
    return descale.flatten()[0].float()


def _checks(q, k, v, block_table, cu_seqlens_q, seqused_k, max_seqlen_q, max_seqlen_k):
    """mha_varlen_fwd (flash_api.cpp), the cutlass interfaces and CHECK_STRIDE_ALIGNMENT (csrc/utils.h)."""
    check(q.dtype in (torch.float16, torch.bfloat16), "VLLM Kernel XPU only supports fp16 and bf16 type")
    check(v.dtype == k.dtype, "key and value must have the same dtype")
    if k.dtype not in FP8:
        check(k.dtype == q.dtype, "query and key must have the same dtype")
    for name, t in (("q", q), ("k", k), ("v", v)):
        check(
            t.stride(-1) == 1, f"{name} expects the last dim to be contiguous (stride==1), got {t.stride(-1)}"
        )
        check(
            t.shape[-1] * t.element_size() % 16 == 0,
            f"{name} last dim size={t.shape[-1]} is not 16-byte aligned. Xe2 2D block requires the "
            "contiguous "
            "dim to be 16-byte aligned.",
        )
    check(q.dim() == 3, "query must be in ragged format")
    check(cu_seqlens_q.dtype == torch.int32, "cu_seqlens_q must have dtype torch.int32")
    check(cu_seqlens_q.is_contiguous(), "cu_seqlens_q must be contiguous")
    if block_table is not None:
        check(block_table.dtype == torch.int32, "page_table must have dtype torch.int32")
        check(block_table.stride(-1) == 1, "page_table must have contiguous last dimension")
        check(k.dim() == 4, "paged key cache must be [num_blocks, block_size, num_heads_kv, head_size]")
        bs = k.shape[1]
        check(
            bs in (16, 32) or (bs > 0 and bs % 64 == 0),
            f"Unsupported page size for fmha: {bs} (supported: 16, 32, or any positive multiple of 64)",
        )
        check(seqused_k.dtype == torch.int32, "seqused_k must have dtype torch.int32")
    limit = 576 if max_seqlen_q == 1 and block_table is not None else HEAD_CASES
    check(q.shape[-1] <= limit, f"FMHA forward only supports head dimension at most {limit}")
    check(q.shape[1] % k.shape[-2] == 0, "number of query heads must be a multiple of the KV heads")


def flash_attn_varlen_func(
    q,
    k,
    v,
    max_seqlen_q,
    cu_seqlens_q,
    max_seqlen_k,
    cu_seqlens_k=None,
    seqused_k=None,
    q_v=None,
    dropout_p=0.0,
    softmax_scale=None,
    causal=False,
    window_size=None,
    softcap=0.0,
    alibi_slopes=None,
    deterministic=False,
    return_attn_probs=False,
    block_table=None,
    return_softmax_lse=False,
    out=None,
    scheduler_metadata=None,
    q_descale=None,
    k_descale=None,
    v_descale=None,
    num_splits=0,
    fa_version=2,
    s_aux=None,
    num_splits_kv=None,
    is_mix_batch=True,
    host_kv_lens=None,
):
    if host_kv_lens is not None:
        if seqused_k is not None:
            raise ValueError("Provide only one of host_kv_lens and seqused_k")
        seqused_k = torch.as_tensor(host_kv_lens, dtype=torch.int32)
    assert cu_seqlens_k is not None or seqused_k is not None, "cu_seqlens_k or seqused_k must be provided"
    assert cu_seqlens_k is None or seqused_k is None, (
        "cu_seqlens_k and seqused_k cannot be provided at the same time"
    )
    assert block_table is None or seqused_k is not None, "when enable block_table, seqused_k is needed"
    assert block_table is not None or cu_seqlens_k is not None, (
        "when block_table is disabled, cu_seqlens_k is needed"
    )
    if fa_version != 2:
        raise NotImplementedError("not support yet")
    if num_splits > 1:
        raise NotImplementedError("FA2 does not support num_splits > 1")
    if q_descale is not None:
        raise NotImplementedError("FA2 does not support q_descale")
    if scheduler_metadata is not None:
        raise NotImplementedError("FA2 does not support scheduler_metadata")
    if (k_descale is None) != (v_descale is None):
        raise NotImplementedError("FA2 only supports both KV cache descaled")
    if alibi_slopes is not None or dropout_p or q_v is not None or return_softmax_lse:
        raise NotImplementedError("alibi, dropout, q_v and softmax_lse are not emulated")
    if softcap:
        # mha_varlen_fwd passes softcap to neither the chunked-prefill nor the decode interface: the device
        # would ignore it, so the emulator refuses rather than compute what the device does not
        raise NotImplementedError("softcap is not applied by the vllm-xpu-kernels attention")
    k_descale, v_descale = _descale(k_descale, "k_descale"), _descale(v_descale, "v_descale")
    left, right = (-1, -1) if window_size is None else tuple(window_size)
    arch.require_device_code("flash_attn_varlen_func")
    arch.require_xe2_xe3()
    _checks(q, k, v, block_table, cu_seqlens_q, seqused_k, max_seqlen_q, max_seqlen_k)
    if k.dtype in FP8:
        check(k_descale is not None, "fp8 KV caches need k_descale and v_descale")
    scale = q.shape[-1] ** -0.5 if softmax_scale is None else softmax_scale
    if out is None:
        out = torch.empty_like(q)
    cu = cu_seqlens_q.tolist()
    lengths = (
        seqused_k.tolist()
        if seqused_k is not None
        else [b - a for a, b in zip(cu_seqlens_k.tolist()[:-1], cu_seqlens_k.tolist()[1:], strict=True)]
    )
    check(cu[-1] <= q.shape[0], f"cu_seqlens_q ends at {cu[-1]}, past the {q.shape[0]} query rows")
    kv_start = cu_seqlens_k.tolist() if cu_seqlens_k is not None else None
    for b, length in enumerate(lengths):
        n = cu[b + 1] - cu[b]
        if n == 0:
            continue
        check(n <= max_seqlen_q and length <= max_seqlen_k, f"sequence {b} exceeds max_seqlen_q/max_seqlen_k")
        check(length >= n or length == 0, f"sequence {b}: {n} queries but only {length} keys")
        if block_table is not None:
            keys = gather_pages(k, "NHD", block_table[b], length)
            values = gather_pages(v, "NHD", block_table[b], length)
        else:
            keys = k[kv_start[b] : kv_start[b] + length].float()
            values = v[kv_start[b] : kv_start[b] + length].float()
        if k_descale is not None:
            keys, values = keys * k_descale, values * v_descale
        seen = visible(n, length, causal=causal, left=left, right=right) if length else None
        rows = q[cu[b] : cu[b + 1]]
        if length == 0:
            out[cu[b] : cu[b + 1]] = 0
            continue
        out[cu[b] : cu[b + 1]] = attend_visible(rows, keys, values, seen, scale, sinks=s_aux).to(out.dtype)
    return out
