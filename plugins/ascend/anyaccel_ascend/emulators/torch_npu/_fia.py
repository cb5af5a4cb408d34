"""npu_fused_infer_attention_score and its _v2 variant, paged (block_table) with input_layout "TND".

Documented behaviour emulated (torch_npu 2.14 wheel, torch_npu/_op_plugin_docs.py; Ascend/op-plugin docs):
- query [T, N, D] float16/bfloat16, contiguous; N == num_heads; D a multiple of 16 (16-bit inputs), <= 512;
  N <= 256; num_heads % num_key_value_heads == 0 with a ratio <= 64.
- key/value: the paged cache, (blocknum, blocksize, KV_N*D) or (blocknum, KV_N, blocksize, D) (TND and BNSD
  queries read both), the query's dtype, contiguous, identical shapes; KV_N*D <= 65535 for the 3-D form.
- block_table int32 [B, >= max blocks per sequence]; actual_seq_lengths_kv must be given (page attention).
- block_size: a multiple of 128 in [128, 512] when some sequence has more than one query row (the prompt
  branch); otherwise (every row a single token) a multiple of 16 in (0, 512].
- TND: actual_seq_lengths (v2: actual_seq_qlen) is the host list of cumulative query lengths, one per
  sequence, non-decreasing, ending at T; actual_seq_lengths_kv (v2: actual_seq_kvlen) the per-sequence KV
  lengths when a block table is used.
- sparse_mode 2, 3 and 4 need the compressed atten_mask: (2048, 2048) or (1[, 1], 2048, 2048),
  bool/int8/uint8, ones strictly above the diagonal. 3 is right-down causal, 4 a band with pre_tokens and
  next_tokens (pre_tokens >= -q_len, next_tokens >= -kv_len, pre_tokens + next_tokens >= 0).
- _v2 learnable_sink: bfloat16 [N]; TND (or NTD_TND) only; value head dim <= 128; no quantization.
- Returns (attention_out shaped like query, softmax_lse); with the lse flag off the second is a [1] zero.
Not emulated (they raise NotEmulated): other layouts, non-paged KV, int8/int4 inputs and every quantization
argument, pse_shift, shared prefixes, left padding, rope inputs, sparse modes 1/2/9, the lse output.
"""

from __future__ import annotations

import torch

from ._checks import HALF, NotEmulated, dtype_of_soc, host_ints, require, unused
from ._masks import attend

MASK_SIZE = 2048
INT_MAX = 2147483647


def _check_mask(fn: str, atten_mask: torch.Tensor | None, sparse_mode: int) -> None:
    if sparse_mode in (2, 3, 4):
        require(atten_mask is not None, fn, f"sparse_mode {sparse_mode} needs the 2048x2048 atten_mask")
        assert atten_mask is not None
        square = atten_mask.reshape(atten_mask.shape[-2:]) if atten_mask.dim() >= 2 else atten_mask
        require(
            atten_mask.shape
            in ((MASK_SIZE, MASK_SIZE), (1, MASK_SIZE, MASK_SIZE), (1, 1, MASK_SIZE, MASK_SIZE)),
            fn,
            f"atten_mask must be (2048, 2048) or (1[, 1], 2048, 2048), got {tuple(atten_mask.shape)}",
        )
        require(
            atten_mask.dtype in (torch.bool, torch.int8, torch.uint8),
            fn,
            "atten_mask dtype: bool, int8 or uint8",
        )
        expected = torch.triu(torch.ones(MASK_SIZE, MASK_SIZE, dtype=torch.bool), diagonal=1)
        require(
            bool((square.bool() == expected).all()), fn, "atten_mask must be 1 strictly above the diagonal"
        )
    elif sparse_mode == 0:
        if atten_mask is not None:
            raise NotEmulated(f"torch_npu.{fn}: a full atten_mask with sparse_mode 0 is not emulated")
    else:
        raise NotEmulated(f"torch_npu.{fn}: sparse_mode {sparse_mode} is not emulated (0, 3 and 4 are)")


def _paged_tnd(
    fn: str,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    atten_mask: torch.Tensor | None,
    q_cum: object,
    kv_lens: object,
    block_table: torch.Tensor | None,
    num_heads: int,
    num_kv_heads: int,
    scale: float,
    pre_tokens: int,
    next_tokens: int,
    input_layout: str,
    sparse_mode: int,
    block_size: int,
    sink: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    if input_layout != "TND":
        raise NotEmulated(f"torch_npu.{fn}: input_layout {input_layout!r} is not emulated (TND is)")
    require(query.dtype in HALF, fn, f"query dtype {query.dtype}: float16 or bfloat16 (int8 not emulated)")
    dtype_of_soc(fn, query.dtype)
    require(query.dim() == 3, fn, f"TND query must be [T, N, D], got {tuple(query.shape)}")
    for name, t in (("query", query), ("key", key), ("value", value)):
        require(t.is_contiguous(), fn, f"{name} must be contiguous")
    t_total, n, d = query.shape
    require(n == num_heads, fn, f"num_heads {num_heads} != query heads {n}")
    require(0 < n <= 256, fn, f"N must be in (0, 256], got {n}")
    require(d % 16 == 0 and d <= 512, fn, f"head dim {d}: a multiple of 16 <= 512 for 16-bit inputs")
    kv_heads = num_kv_heads or num_heads
    require(num_heads % kv_heads == 0, fn, f"num_heads {num_heads} must be a multiple of num_key_value_heads")
    require(num_heads // kv_heads <= 64, fn, "num_heads / num_key_value_heads must not exceed 64")
    require(key.dtype == query.dtype and value.dtype == query.dtype, fn, "key/value dtype must equal query's")
    require(key.shape == value.shape, fn, "key and value caches must have the same shape")
    if block_table is None:
        raise NotEmulated(f"torch_npu.{fn}: non-paged key/value are not emulated (pass block_table)")
    require(block_size > 0, fn, "block_size must be set with a block_table")
    if key.dim() == 3:
        require(key.shape[1] == block_size, fn, f"cache block dim {key.shape[1]} != block_size {block_size}")
        require(
            key.shape[2] == kv_heads * d,
            fn,
            f"3-D cache must be (blocknum, blocksize, KV_N*D={kv_heads * d})",
        )
        require(kv_heads * d <= 65535, fn, "KV_N*D exceeds 65535 in the (blocknum, blocksize, H) cache")
        k4 = key.view(key.shape[0], block_size, kv_heads, d)
        v4 = value.view(value.shape[0], block_size, kv_heads, d)
    else:
        require(key.dim() == 4, fn, "the paged cache must be 3-D or 4-D")
        require(
            tuple(key.shape[1:]) == (kv_heads, block_size, d),
            fn,
            f"4-D cache must be (blocknum, KV_N, blocksize, D), got {tuple(key.shape)}",
        )
        k4, v4 = key.transpose(1, 2), value.transpose(1, 2)
    cum = host_ints(fn, "actual_seq_lengths", q_cum) if q_cum is not None else None
    require(cum is not None, fn, "TND needs actual_seq_lengths (cumulative query lengths)")
    assert cum is not None
    kv = host_ints(fn, "actual_seq_lengths_kv", kv_lens) if kv_lens is not None else None
    require(kv is not None, fn, "page attention needs actual_seq_lengths_kv")
    assert kv is not None
    batch = len(cum)
    require(batch > 0 and len(kv) == batch, fn, f"{len(kv)} KV lengths for {batch} sequences")
    require(
        all(b >= a for a, b in zip([0, *cum], cum, strict=False)),
        fn,
        "actual_seq_lengths must be non-decreasing",
    )
    require(cum[-1] == t_total, fn, f"actual_seq_lengths ends at {cum[-1]}, query has T={t_total}")
    q_lens = [b - a for a, b in zip([0, *cum], cum, strict=False)]
    if max(q_lens) > 1:
        require(
            128 <= block_size <= 512 and block_size % 128 == 0,
            fn,
            f"page attention with prompts needs block_size a multiple of 128 in [128, 512], got {block_size}",
        )
    else:
        require(
            0 < block_size <= 512 and block_size % 16 == 0, fn, f"block_size {block_size}: 16-aligned, <= 512"
        )
    require(block_table.dtype == torch.int32 and block_table.dim() == 2, fn, "block_table must be 2-D int32")
    require(
        block_table.shape[0] == batch,
        fn,
        f"block_table has {block_table.shape[0]} rows for {batch} sequences",
    )
    need = max(-(-s // block_size) for s in kv)
    require(block_table.shape[1] >= need, fn, f"block_table needs at least {need} columns")
    require(all(s >= 0 for s in kv), fn, "actual_seq_lengths_kv must be non-negative")
    _check_mask(fn, atten_mask, sparse_mode)
    if sparse_mode == 4:
        for ql, s in zip(q_lens, kv, strict=True):
            require(
                pre_tokens >= -ql and next_tokens >= -s and pre_tokens + next_tokens >= 0,
                fn,
                "sparse_mode 4 needs pre_tokens >= -q_len, next_tokens >= -kv_len and a sum >= 0",
            )
    out = torch.zeros(t_total, n, d)
    start = 0
    for b, (ql, s) in enumerate(zip(q_lens, kv, strict=True)):
        blocks = block_table[b, : -(-s // block_size)].long()
        require(
            bool(((blocks >= 0) & (blocks < key.shape[0])).all()), fn, f"block id out of range in row {b}"
        )
        keys = k4[blocks].reshape(-1, kv_heads, d)[:s]
        values = v4[blocks].reshape(-1, kv_heads, d)[:s]
        out[start : start + ql] = attend(
            query[start : start + ql], keys, values, scale, sparse_mode, pre_tokens, next_tokens, sink
        )
        start += ql
    return out.to(query.dtype), torch.zeros(1)


def npu_fused_infer_attention_score(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    pse_shift=None,
    atten_mask=None,
    actual_seq_lengths=None,
    actual_seq_lengths_kv=None,
    dequant_scale1=None,
    quant_scale1=None,
    dequant_scale2=None,
    quant_scale2=None,
    quant_offset2=None,
    antiquant_scale=None,
    antiquant_offset=None,
    block_table=None,
    query_padding_size=None,
    kv_padding_size=None,
    key_antiquant_scale=None,
    key_antiquant_offset=None,
    value_antiquant_scale=None,
    value_antiquant_offset=None,
    key_shared_prefix=None,
    value_shared_prefix=None,
    actual_shared_prefix_len=None,
    query_rope=None,
    key_rope=None,
    key_rope_antiquant_scale=None,
    num_heads: int = 1,
    scale: float = 1.0,
    pre_tokens: int = INT_MAX,
    next_tokens: int = INT_MAX,
    input_layout: str = "BSH",
    num_key_value_heads: int = 0,
    sparse_mode: int = 0,
    inner_precise: int = 0,
    block_size: int = 0,
    antiquant_mode: int = 0,
    softmax_lse_flag: bool = False,
    key_antiquant_mode: int = 0,
    value_antiquant_mode: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    fn = "npu_fused_infer_attention_score"
    unused(
        fn,
        pse_shift=pse_shift,
        dequant_scale1=dequant_scale1,
        quant_scale1=quant_scale1,
        dequant_scale2=dequant_scale2,
        quant_scale2=quant_scale2,
        quant_offset2=quant_offset2,
        antiquant_scale=antiquant_scale,
        antiquant_offset=antiquant_offset,
        query_padding_size=query_padding_size,
        kv_padding_size=kv_padding_size,
        key_antiquant_scale=key_antiquant_scale,
        key_antiquant_offset=key_antiquant_offset,
        value_antiquant_scale=value_antiquant_scale,
        value_antiquant_offset=value_antiquant_offset,
        key_shared_prefix=key_shared_prefix,
        value_shared_prefix=value_shared_prefix,
        actual_shared_prefix_len=actual_shared_prefix_len,
        query_rope=query_rope,
        key_rope=key_rope,
        key_rope_antiquant_scale=key_rope_antiquant_scale,
        softmax_lse_flag=softmax_lse_flag,
    )
    require(inner_precise in (0, 1, 2, 3), fn, f"inner_precise {inner_precise} is not 0..3")
    return _paged_tnd(
        fn,
        query,
        key,
        value,
        atten_mask,
        actual_seq_lengths,
        actual_seq_lengths_kv,
        block_table,
        num_heads,
        num_key_value_heads,
        scale,
        pre_tokens,
        next_tokens,
        input_layout,
        sparse_mode,
        block_size,
        None,
    )


def npu_fused_infer_attention_score_v2(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    query_rope=None,
    key_rope=None,
    pse_shift=None,
    atten_mask=None,
    actual_seq_qlen=None,
    actual_seq_kvlen=None,
    block_table=None,
    dequant_scale_query=None,
    dequant_scale_key=None,
    dequant_offset_key=None,
    dequant_scale_value=None,
    dequant_offset_value=None,
    dequant_scale_key_rope=None,
    quant_scale_out=None,
    quant_offset_out=None,
    quant_scale_p=None,
    learnable_sink=None,
    num_query_heads: int = 1,
    num_key_value_heads: int = 0,
    softmax_scale: float = 1.0,
    pre_tokens: int = INT_MAX,
    next_tokens: int = INT_MAX,
    input_layout: str = "BSH",
    sparse_mode: int = 0,
    block_size: int = 0,
    query_quant_mode: int = 0,
    key_quant_mode: int = 0,
    value_quant_mode: int = 0,
    inner_precise: int = 0,
    return_softmax_lse: bool = False,
    query_dtype=None,
    key_dtype=None,
    value_dtype=None,
    query_rope_dtype=None,
    key_rope_dtype=None,
    key_shared_prefix_dtype=None,
    value_shared_prefix_dtype=None,
    dequant_scale_query_dtype=None,
    dequant_scale_key_dtype=None,
    dequant_scale_value_dtype=None,
    dequant_scale_key_rope_dtype=None,
    out_dtype=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    fn = "npu_fused_infer_attention_score_v2"
    unused(
        fn,
        query_rope=query_rope,
        key_rope=key_rope,
        pse_shift=pse_shift,
        dequant_scale_query=dequant_scale_query,
        dequant_scale_key=dequant_scale_key,
        dequant_offset_key=dequant_offset_key,
        dequant_scale_value=dequant_scale_value,
        dequant_offset_value=dequant_offset_value,
        dequant_scale_key_rope=dequant_scale_key_rope,
        quant_scale_out=quant_scale_out,
        quant_offset_out=quant_offset_out,
        quant_scale_p=quant_scale_p,
        return_softmax_lse=return_softmax_lse,
        query_dtype=query_dtype,
        key_dtype=key_dtype,
        value_dtype=value_dtype,
        out_dtype=out_dtype,
    )
    require(
        (query_quant_mode, key_quant_mode, value_quant_mode) == (0, 0, 0),
        fn,
        "quantization modes are not emulated",
    )
    if learnable_sink is not None:
        require(input_layout in ("TND", "NTD_TND"), fn, "learnable_sink needs input_layout TND or NTD_TND")
        require(learnable_sink.dtype == torch.bfloat16, fn, "learnable_sink must be bfloat16")
        require(
            tuple(learnable_sink.shape) == (num_query_heads,), fn, "learnable_sink must be [num_query_heads]"
        )
        value_d = (
            value.shape[-1]
            if value.dim() == 4
            else value.shape[-1] // (num_key_value_heads or num_query_heads)
        )
        require(value_d <= 128, fn, f"learnable_sink needs a value head dim <= 128, got {value_d}")
    return _paged_tnd(
        fn,
        query,
        key,
        value,
        atten_mask,
        actual_seq_qlen,
        actual_seq_kvlen,
        block_table,
        num_query_heads,
        num_key_value_heads,
        softmax_scale,
        pre_tokens,
        next_tokens,
        input_layout,
        sparse_mode,
        block_size,
        learnable_sink,
    )
