"""Paged decode (aiter/ops/attention.py, csrc/cpp_itfs/pa/pa_v1.py, csrc/py_itfs_cu/asm_pa.cu; ROCm/aiter
e404860), in plain torch, with AITER's argument checks and the assembly kernel's lookup table."""

from __future__ import annotations

import math

import torch

from anyaccel_rocm.gates import PA_ASM_HEAD_DIM, pa_asm_kernel

from ._attend import attend
from ._device import check, fp8, gfx

_QTYPES = {torch.float16: "fp16", torch.bfloat16: "bf16"}


def _kv_type(dtype: torch.dtype) -> str | None:
    if dtype in _QTYPES:
        return _QTYPES[dtype]
    if dtype in (torch.int8, torch.uint8):
        return "int8"
    return "fp8" if dtype == fp8() else None


def _decode(q, keys_of, values_of, block_tables, context_lens, scale, softcap=0.0, window=0):
    """keys_of(block) -> [block_size, Hkv, D] (float32, dequantized); one query row per sequence."""
    out = torch.zeros(q.shape, dtype=torch.float32)
    for b in range(q.shape[0]):
        n = int(context_lens[b])
        if n == 0:
            continue
        bs = keys_of(int(block_tables[b, 0])).shape[0]
        blocks = [int(block_tables[b, i]) for i in range(math.ceil(n / bs))]
        k = torch.cat([keys_of(blk) for blk in blocks])[:n]
        v = torch.cat([values_of(blk) for blk in blocks])[:n]
        visible = torch.ones(1, n, dtype=torch.bool)
        if window > 0:
            visible &= torch.arange(n).view(1, -1) > n - 1 - window
        out[b] = attend(q[b : b + 1], k, v, visible, scale, softcap)[0]
    return out


def paged_attention_v1(
    out,
    workspace_buffer,
    query,
    key_cache,
    value_cache,
    scale,
    block_tables,
    cu_query_lens,
    context_lens,
    max_context_len,
    alibi_slopes,
    kv_cache_dtype,
    kv_cache_layout,
    logits_soft_cap,
    k_scale,
    v_scale,
    fp8_out_scale=None,
    partition_size=256,
    mtp=1,
    q_scale=None,
    sliding_window=0,
):
    """out/query [B, Hq, D] fp16/bf16; caches [num_blocks, block_size, Hkv, D] ("NHD") or
    [num_blocks, Hkv, block_size, D] ("HND"); the caller sizes the uint8 workspace."""
    if alibi_slopes is not None or fp8_out_scale is not None or q_scale is not None or mtp != 1:
        raise NotImplementedError("emulated paged_attention_v1: no alibi, fp8 output, q scale or mtp")
    if query.dtype not in _QTYPES:
        raise ValueError(f"Unsupported data type: {query.dtype}")
    if out.dtype not in _QTYPES:
        raise ValueError(f"Unsupported data type: {out.dtype}")
    if kv_cache_dtype == "auto":
        if key_cache.dtype != query.dtype:
            raise ValueError(f"kv_cache_dtype auto needs a {query.dtype} cache, got {key_cache.dtype}")
    elif kv_cache_dtype in ("fp8", "fp8_e4m3"):
        check(key_cache.dtype in (fp8(), torch.uint8), f"fp8 cache must hold {fp8()} bits")
    else:
        raise ValueError(f"Unsupported kv_cache_dtype: {kv_cache_dtype}")
    if kv_cache_layout not in ("NHD", "HND"):
        raise ValueError(f"Unsupported kv_cache_layout: {kv_cache_layout}")
    bs = key_cache.size(2) if kv_cache_layout == "HND" else key_cache.size(1)
    assert 256 % bs == 0, f"block_size {bs} must divide 256"
    max_parts = math.ceil(max_context_len / partition_size)
    if block_tables.dim() != 2:
        raise ValueError("paged_attention_v1: block_tables must be 2D [num_seqs, max_num_blocks_per_seq]")
    if block_tables.size(1) < math.ceil(max_context_len / bs):
        raise ValueError("paged_attention_v1: block_tables.size(1) is too small for max_context_len")
    if context_lens.size(0) != block_tables.size(0):
        raise ValueError("paged_attention_v1: context_lens.size(0) must match block_tables.size(0)")
    b, hq, d = query.shape
    need = b * hq * max_parts * d * query.element_size() + 2 * b * hq * max_parts * 4
    if workspace_buffer.numel() * workspace_buffer.element_size() < need:
        raise ValueError(f"paged_attention_v1: workspace_buffer is too small; need at least {need} bytes")
    if kv_cache_layout == "HND":
        key_cache, value_cache = key_cache.transpose(1, 2), value_cache.transpose(1, 2)
    ks = float(k_scale) if kv_cache_dtype != "auto" else 1.0
    vs = float(v_scale) if kv_cache_dtype != "auto" else 1.0
    kc = key_cache.view(fp8()) if key_cache.dtype == torch.uint8 else key_cache
    vc = value_cache.view(fp8()) if value_cache.dtype == torch.uint8 else value_cache
    o = _decode(
        query,
        lambda blk: kc[blk].float() * ks,
        lambda blk: vc[blk].float() * vs,
        block_tables,
        context_lens,
        scale,
        logits_soft_cap,
        sliding_window,
    )
    out.copy_(o.to(out.dtype))


def pa_fwd_asm(
    Q,
    K,
    V,
    block_tables,
    context_lens,
    block_tables_stride0,
    max_qlen=1,
    K_QScale=None,
    V_QScale=None,
    out_=None,
    qo_indptr=None,
    high_precision=1,
    kernelName=None,
):
    """Q [B, Hq, 128] fp16/bf16; K [num_blocks, Hkv, D/x, block_size, x]; V [num_blocks, Hkv,
    block_size/x, D, x] (x = 16 bytes of the cache's elements). The softmax scale is 1/sqrt(128), fixed
    by the kernel. Per-token scales [num_blocks, Hkv, block_size] for 8-bit caches."""
    if max_qlen != 1 or qo_indptr is not None or kernelName is not None:
        raise NotImplementedError("emulated pa_fwd_asm: plain decode only (max_qlen 1, no kernel name)")
    b, hq, d = Q.shape
    check(d == PA_ASM_HEAD_DIM, f"pa_fwd: ASM PA only supports head_size=128, got {d}")
    check(Q.dtype in _QTYPES, f"pa_fwd: unsupport Q dtype:{Q.dtype}")
    kv_type = _kv_type(K.dtype)
    check(kv_type is not None, f"pa_fwd: unsupport K dtype:{K.dtype}")
    n, hkv, dx, bs, x = K.shape
    check(x == 16 // K.element_size() and dx * x == d, "K must be [num_blocks, Hkv, D/x, block_size, x]")
    check(tuple(V.shape) == (n, hkv, bs // x, d, x), "V must be [num_blocks, Hkv, block_size/x, D, x]")
    check(block_tables.stride(0) == block_tables_stride0, "block_tables_stride0 differs from the table's")
    row = pa_asm_kernel(gfx(), _QTYPES[Q.dtype], kv_type, hq // hkv) if bs == 16 else None
    check(
        row is not None,
        f"get_heuristic_kernel: cannot get heuristic kernel! q_type:{_QTYPES[Q.dtype]} kv_type:{kv_type} "
        f"gqa:{hq // hkv} mtp:0 msk:0 hp:{high_precision} block_size:{bs}",
    )
    quant = kv_type in ("fp8", "int8")
    check(not quant or (K_QScale is not None and V_QScale is not None), "8-bit KV needs K_QScale/V_QScale")
    if quant:  # the kernel takes only their addresses: dense float32 [num_blocks, Hkv, block_size]
        for name, s in (("K_QScale", K_QScale), ("V_QScale", V_QScale)):
            check(
                s.dtype == torch.float32 and tuple(s.shape) == (n, hkv, bs) and s.is_contiguous(),
                f"{name} must be contiguous float32 [{n}, {hkv}, {bs}], got {s.dtype} {list(s.shape)}",
            )

    def keys(blk: int) -> torch.Tensor:  # [bs, Hkv, D]
        k = K[blk].permute(2, 0, 1, 3).reshape(bs, hkv, d).float()
        return k * K_QScale[blk].t().unsqueeze(-1).float() if quant else k

    def values(blk: int) -> torch.Tensor:
        v = V[blk].permute(1, 3, 0, 2).reshape(bs, hkv, d).float()
        return v * V_QScale[blk].t().unsqueeze(-1).float() if quant else v

    o = _decode(Q, keys, values, block_tables, context_lens, d**-0.5)
    output = out_ if out_ is not None else torch.empty_like(Q)
    output.copy_(o.to(output.dtype))
    return output
