"""Emulator of flashinfer.prefill (flashinfer-python 0.7.4): BatchPrefillWithPagedKVCacheWrapper (plan,
then run per layer) and trtllm_batch_context_with_kv_cache.

Both read every key and value from the paged cache (the new tokens included); causal masks are aligned to
the end of each sequence. Parameters past those listed are not emulated (passing them raises TypeError);
listed ones with a non-default value that are not emulated raise NotImplementedError.

trtllm_batch_context_with_kv_cache: logits = q.k * bmm1_scale, output = softmax @ v * bmm2_scale (floats or
float32 [1] tensors); the (q, kv) dtype pairs it has kernels for are TRTLLM_CONTEXT_PAIRS, so an fp8 cache
needs an fp8 query; the output is q's dtype or fp16/bf16.
"""

from __future__ import annotations

from typing import Any

import torch

from ..attention_math import attend, gather_pages
from ..errors import not_emulated, require
from .decode import (
    E4M3,
    check_out_dtype,
    check_sinks,
    check_workspace,
    check_wrapper,
    kernels_not_found,
    scalar,
    trtllm_backend,
)
from .paged import HEAD_DIMS, KV_DTYPES, Q_DTYPES, as_dtype, check_csr, sequence_lengths, split_cache

# (q, kv) dtype pairs with trtllm-gen context kernels: no fp16/bf16 q over an fp8 cache (FlashInfer's tests;
# vLLM: "TRTLLM prefill attention does not support BF16 Q and fp8 kv cache").
TRTLLM_CONTEXT_PAIRS = ((torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16), (E4M3, E4M3))


def _check_qo_indptr(qo_indptr: torch.Tensor, batch: int) -> None:
    require(qo_indptr.dtype == torch.int32 and qo_indptr.shape == (batch + 1,), "qo_indptr: [B + 1] int32")
    require(int(qo_indptr[0]) == 0 and bool((qo_indptr.diff() >= 0).all()), "qo_indptr must be a cumsum")


def trtllm_batch_context_with_kv_cache(
    query: torch.Tensor,
    kv_cache,
    workspace_buffer: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    max_q_len: int,
    max_kv_len: int,
    bmm1_scale: float | torch.Tensor,
    bmm2_scale: float | torch.Tensor,
    batch_size: int,
    cum_seq_lens_q: torch.Tensor,
    cum_seq_lens_kv: torch.Tensor,
    window_left: int = -1,
    out: torch.Tensor | None = None,
    out_dtype: torch.dtype | str | None = None,
    o_sf_scale: float | None = None,
    o_sf_vec_size: int | None = None,
    kv_layout: str = "HND",
    enable_pdl: bool | None = None,
    sinks: torch.Tensor | None = None,
    kv_cache_sf: Any = None,
    skip_softmax_threshold_scale_factor: float | None = None,
    uses_shared_paged_kv_idx: bool = True,
    causal: bool = True,
) -> torch.Tensor:
    api = "trtllm_batch_context_with_kv_cache"
    not_emulated(api, o_sf_scale=(o_sf_scale, None), o_sf_vec_size=(o_sf_vec_size, None))
    not_emulated(api, kv_cache_sf=(kv_cache_sf, None), uses_shared=(uses_shared_paged_kv_idx, True))
    not_emulated(api, skip_softmax=(skip_softmax_threshold_scale_factor, None))
    trtllm_backend("trtllm-gen", api)
    check_workspace(workspace_buffer)
    k, v, page_size, hkv, dim = split_cache(kv_cache, kv_layout)
    require(query.dim() == 3 and query.shape[-1] == dim, f"query must be [tokens, heads, {dim}]")
    kernels_not_found(api, query.dtype, k.dtype, TRTLLM_CONTEXT_PAIRS)
    dtype = check_out_dtype(out_dtype if out is None else out.dtype, query.dtype)
    hq = query.shape[1]
    require(hq % hkv == 0, "num_qo_heads must be a multiple of num_kv_heads")
    _check_qo_indptr(cum_seq_lens_q, batch_size)
    require(
        cum_seq_lens_kv.dtype == torch.int32 and cum_seq_lens_kv.shape == (batch_size + 1,), "cum_seq_lens_kv"
    )
    require(
        bool((cum_seq_lens_kv.diff() == seq_lens).all()), "cum_seq_lens_kv must be the cumsum of seq_lens"
    )
    require(block_tables.dtype == torch.int32 and block_tables.shape[0] == batch_size, "block_tables: [B, n]")
    require(seq_lens.dtype == torch.int32 and seq_lens.shape == (batch_size,), "seq_lens: [B] int32")
    new = cum_seq_lens_q.diff()
    require(
        (int(new.max()) if new.numel() else 0) <= max_q_len
        and (int(seq_lens.max()) if seq_lens.numel() else 0) <= max_kv_len,
        "max lens",
    )
    require(int(cum_seq_lens_q[-1]) == query.shape[0], "cum_seq_lens_q[-1] must equal the query tokens")
    sinks = check_sinks(sinks, hq)
    scale1, scale2 = scalar(bmm1_scale, "bmm1_scale"), scalar(bmm2_scale, "bmm2_scale")
    result = torch.zeros(query.shape, dtype=torch.float32)
    for b in range(batch_size):
        lo, hi, length = int(cum_seq_lens_q[b]), int(cum_seq_lens_q[b + 1]), int(seq_lens[b])
        keys = gather_pages(k, kv_layout, block_tables[b], length)
        values = gather_pages(v, kv_layout, block_tables[b], length)
        result[lo:hi] = attend(
            query[lo:hi],
            keys,
            values,
            scale=scale1,
            causal=causal,
            window_left=window_left,
            sinks=sinks,
            v_scale=scale2,
        )
    if out is not None:
        out.copy_(result)
        return out
    return result.to(dtype)


class BatchPrefillWithPagedKVCacheWrapper:
    """plan() once per batch, run() once per layer; run() before plan() raises."""

    def __init__(
        self,
        float_workspace_buffer: torch.Tensor,
        kv_layout: str = "NHD",
        use_cuda_graph: bool = False,
        qo_indptr_buf: torch.Tensor | None = None,
        paged_kv_indptr_buf: torch.Tensor | None = None,
        paged_kv_indices_buf: torch.Tensor | None = None,
        paged_kv_last_page_len_buf: torch.Tensor | None = None,
        custom_mask_buf: torch.Tensor | None = None,
        mask_indptr_buf: torch.Tensor | None = None,
        backend: str = "auto",
        jit_args: list[Any] | None = None,
        jit_kwargs: dict[str, Any] | None = None,
    ) -> None:
        api = "BatchPrefillWithPagedKVCacheWrapper"
        check_wrapper("prefill", float_workspace_buffer, kv_layout, backend)
        not_emulated(api, use_cuda_graph=(use_cuda_graph, False), custom_mask_buf=(custom_mask_buf, None))
        not_emulated(api, jit_args=(jit_args, None))
        self._kv_layout = kv_layout
        self._plan: dict[str, Any] | None = None

    def plan(
        self,
        qo_indptr: torch.Tensor,
        paged_kv_indptr: torch.Tensor,
        paged_kv_indices: torch.Tensor,
        paged_kv_last_page_len: torch.Tensor,
        num_qo_heads: int,
        num_kv_heads: int,
        head_dim_qk: int,
        page_size: int,
        head_dim_vo: int | None = None,
        custom_mask: torch.Tensor | None = None,
        packed_custom_mask: torch.Tensor | None = None,
        causal: bool = False,
        pos_encoding_mode: str = "NONE",
        use_fp16_qk_reduction: bool = False,
        sm_scale: float | None = None,
        window_left: int = -1,
        logits_soft_cap: float | None = None,
        rope_scale: float | None = None,
        rope_theta: float | None = None,
        q_data_type: str | torch.dtype = "float16",
        kv_data_type: str | torch.dtype | None = None,
        o_data_type: str | torch.dtype | None = None,
        non_blocking: bool = True,
    ) -> None:
        api = "BatchPrefillWithPagedKVCacheWrapper.plan"
        not_emulated(api, custom_mask=(custom_mask, None), packed_custom_mask=(packed_custom_mask, None))
        not_emulated(api, pos_encoding_mode=(pos_encoding_mode, "NONE"), rope_scale=(rope_scale, None))
        not_emulated(api, use_fp16_qk_reduction=(use_fp16_qk_reduction, False), rope_theta=(rope_theta, None))
        batch = check_csr(paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len, page_size)
        _check_qo_indptr(qo_indptr, batch)
        require(num_qo_heads % num_kv_heads == 0, "num_qo_heads must be a multiple of num_kv_heads")
        require(
            head_dim_vo in (None, head_dim_qk),
            "head_dim_vo != head_dim_qk is not emulated",
            NotImplementedError,
        )
        require(head_dim_qk in HEAD_DIMS, f"Unsupported head_dim: {head_dim_qk}")
        q_dtype = as_dtype(q_data_type)
        kv_dtype = as_dtype(kv_data_type, q_dtype)
        require(q_dtype in Q_DTYPES, f"Unsupported q_data_type {q_dtype}")
        require(kv_dtype in KV_DTYPES, f"Unsupported kv_data_type {kv_dtype}")
        lengths = sequence_lengths(paged_kv_indptr, paged_kv_last_page_len, page_size)
        require(bool((lengths >= qo_indptr.diff()).all()), "a request has more queries than kv tokens")
        self._plan = {
            "batch": batch,
            "qo_indptr": qo_indptr.clone(),
            "lengths": lengths,
            "indptr": paged_kv_indptr.clone(),
            "indices": paged_kv_indices,
            "heads": (num_qo_heads, num_kv_heads, head_dim_qk),
            "page_size": page_size,
            "causal": causal,
            "window_left": window_left,
            "softcap": float(logits_soft_cap or 0.0),
            "q_dtype": q_dtype,
            "kv_dtype": kv_dtype,
            "o_dtype": as_dtype(o_data_type, q_dtype),
            "sm_scale": sm_scale if sm_scale is not None else head_dim_qk**-0.5,
        }

    def run(
        self,
        q: torch.Tensor,
        paged_kv_cache,
        *,
        q_scale: float | None = None,
        k_scale: float | None = None,
        v_scale: float | None = None,
        out: torch.Tensor | None = None,
        lse: torch.Tensor | None = None,
        return_lse: bool = False,
        lse_base: Any = None,
        lse_layout: Any = None,
        enable_pdl: bool | None = None,
        window_left: int | None = None,
        sinks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        api = "BatchPrefillWithPagedKVCacheWrapper.run"
        if self._plan is None:
            raise RuntimeError(f"{api}: plan() must be called before run()")
        not_emulated(api, q_scale=(q_scale, None), lse=(lse, None), return_lse=(return_lse, False))
        p = self._plan
        hq, hkv, dim = p["heads"]
        k, v, page_size, heads, head_dim = split_cache(paged_kv_cache, self._kv_layout)
        require(
            (heads, head_dim, page_size) == (hkv, dim, p["page_size"]), "kv cache does not match the plan"
        )
        tokens = int(p["qo_indptr"][-1])
        require(q.shape == (tokens, hq, dim), f"q must be [{tokens}, {hq}, {dim}] as planned")
        require(q.dtype == p["q_dtype"] and k.dtype == p["kv_dtype"], "q/kv dtypes differ from the plan")
        require(window_left is None or window_left == p["window_left"], "window_left differs from the plan")
        for name, s in (("k_scale", k_scale), ("v_scale", v_scale)):
            require(s is None or isinstance(s, float), f"{name} must be a host float")
        sinks = check_sinks(sinks, hq)
        result = torch.zeros(q.shape, dtype=torch.float32)
        for b in range(p["batch"]):
            lo, hi, length = int(p["qo_indptr"][b]), int(p["qo_indptr"][b + 1]), int(p["lengths"][b])
            pages = p["indices"][int(p["indptr"][b]) : int(p["indptr"][b + 1])]
            keys = gather_pages(k, self._kv_layout, pages, length)
            values = gather_pages(v, self._kv_layout, pages, length)
            result[lo:hi] = attend(
                q[lo:hi],
                keys,
                values,
                scale=p["sm_scale"] * (k_scale or 1.0),
                causal=p["causal"],
                window_left=p["window_left"],
                softcap=p["softcap"],
                sinks=sinks,
                v_scale=v_scale or 1.0,
            )
        if out is not None:
            out.copy_(result)
            return out
        return result.to(p["o_dtype"])
