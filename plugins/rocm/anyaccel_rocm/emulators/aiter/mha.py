"""aiter.flash_attn_varlen_func (aiter/ops/mha.py, ROCm/aiter e404860): variable-length attention over
packed sequences, in plain torch. Records which of its kernels AITER would take (`last_engine`: "asm v3"
or "ck", by can_impl_fmha_v3_fwd), so tests can check the plugin's explanation against it."""

from __future__ import annotations

import torch

from anyaccel_rocm.gates import CK_MAX_HEAD_DIM, prefill_engine

from ._attend import attend
from ._device import check, gfx

last_engine: str | None = None


def flash_attn_varlen_func(
    q,
    k,
    v,
    cu_seqlens_q,
    cu_seqlens_k,
    max_seqlen_q,
    max_seqlen_k,
    min_seqlen_q=0,
    dropout_p=0.0,
    softmax_scale=None,
    logits_soft_cap=0.0,
    causal=False,
    window_size=(-1, -1, 0),
    bias=None,
    alibi_slopes=None,
    deterministic=False,
    return_lse=False,
    return_attn_probs=False,
    how_v3_bf16_cvt=1,
    block_table=None,
    out=None,
    cu_seqlens_q_padded=None,
    cu_seqlens_k_padded=None,
    sink_ptr=None,
):
    """q [total_q, Hq, D], k/v [total_k, Hkv, D] (fp16/bf16), cu_seqlens int32 [B + 1]. Causal masks align
    to the bottom right; window_size (left, right, sink) with -1 for unbounded: query i of a sequence with
    sq queries and sk keys sees keys in [i + sk - sq - left, i + sk - sq + right]."""
    global last_engine
    if block_table is not None or bias is not None or alibi_slopes is not None or dropout_p != 0.0:
        raise NotImplementedError("emulated flash_attn_varlen_func: no paged KV, bias, alibi or dropout")
    assert q.dim() == 3 and k.dim() == 3 and v.dim() == 3, "q, k, v must be [total, heads, head_dim]"
    assert q.dtype in (torch.float16, torch.bfloat16), f"unsupported q dtype {q.dtype}"
    assert k.dtype == q.dtype and v.dtype == q.dtype, "q, k and v must have the same dtype"
    hq, hkv, d = q.shape[1], k.shape[1], q.shape[2]
    # csrc/py_itfs_ck/mha_varlen_fwd_kernels.cu (TORCH_CHECK: RuntimeError)
    check(
        q.stride(-1) == 1 and k.stride(-1) == 1 and v.stride(-1) == 1,
        "Input tensor must have contiguous last dimension",
    )
    check(d <= CK_MAX_HEAD_DIM, "CK only supports head dimension at most 256")
    check(d % 8 == 0, "query, key, value, and out_ must have a head_size that is a multiple of 8")
    check(hq % hkv == 0, "Number of heads in key/value must divide number of heads in query")
    for cu in (cu_seqlens_q, cu_seqlens_k):
        assert cu.dtype == torch.int32 and cu.dim() == 1, "cu_seqlens must be 1-D int32"
    if sink_ptr is not None:
        assert sink_ptr.shape[0] == hq, "sink_ptr has incorrect shape"
    left, right = window_size[0], window_size[1]
    scale = softmax_scale if softmax_scale is not None else d**-0.5
    last_engine = prefill_engine(gfx(), q.dtype, d, left if left >= 0 else -1, logits_soft_cap)
    result = torch.zeros_like(q) if out is None else out
    for b in range(cu_seqlens_q.numel() - 1):
        q0, q1 = int(cu_seqlens_q[b]), int(cu_seqlens_q[b + 1])
        k0, k1 = int(cu_seqlens_k[b]), int(cu_seqlens_k[b + 1])
        sq, sk = q1 - q0, k1 - k0
        assert sq <= max_seqlen_q and sk <= max_seqlen_k, "max_seqlen_q/k below a sequence's length"
        i = torch.arange(sq).view(-1, 1) + (sk - sq)
        j = torch.arange(sk).view(1, -1)
        visible = torch.ones(sq, sk, dtype=torch.bool)
        if causal:
            visible &= j <= i
        if left >= 0:
            visible &= j >= i - left
        if right >= 0:
            visible &= j <= i + right
        o = attend(q[q0:q1], k[k0:k1], v[k0:k1], visible, scale, logits_soft_cap, sink_ptr)
        result[q0:q1] = o.to(result.dtype)
    return result
