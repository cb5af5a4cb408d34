"""Emulator of flashinfer.decode (flashinfer-python 0.7.4): BatchDecodeWithPagedKVCacheWrapper (plan, then
run per layer) and trtllm_batch_decode_with_kv_cache.

trtllm_batch_decode_with_kv_cache: the parameters after `bmm1_scale_log2` are not emulated (passing them
raises TypeError; listed ones between `q_len_per_req` and it raise NotImplementedError unless left at their
defaults). backend "auto" means trtllm-gen when the major is 10, else XQA; trtllm-gen's cubins exist for the
sm_100 family only, XQA for majors 9, 10 and 12: anything else raises, as on the device.
Scales: logits = q.k * bmm1_scale (or exp2 of q.k * bmm1_scale_log2, the same thing in the log2 form the
kernel consumes, which takes precedence over bmm1_scale); output = softmax @ v * bmm2_scale. Dtypes: the
(q, kv) pairs trtllm-gen ships decode kernels for (TRTLLM_DECODE_PAIRS); the output is q's dtype or
fp16/bf16 ("Unsupported out_dtype" otherwise; nvfp4/fp8 outputs are not emulated).
"""

from __future__ import annotations

from typing import Any

import torch

from .. import arch
from ..attention_math import attend, gather_pages
from ..errors import not_emulated, require
from .paged import HEAD_DIMS, KV_DTYPES, Q_DTYPES, as_dtype, check_csr, sequence_lengths, split_cache

TRTLLM_GEN_MAJORS = (10,)
XQA_MAJORS = (9, 10, 12)
E4M3 = torch.float8_e4m3fn
# (q, kv) dtype pairs with trtllm-gen decode kernels (FlashInfer's tests: q_dtype,kv_dtype,o_dtype); any other
# pair fails the kernel lookup on the device.
TRTLLM_DECODE_PAIRS = (
    (torch.float16, torch.float16),
    (torch.bfloat16, torch.bfloat16),
    (torch.float16, E4M3),
    (torch.bfloat16, E4M3),
    (E4M3, E4M3),
)
LOG2E = 1.44269504088896340736


def kernels_not_found(api: str, q: torch.dtype, kv: torch.dtype, pairs) -> None:
    """The device's kernel lookup failure for a (q, kv) dtype pair trtllm-gen has no kernel for."""
    if (q, kv) not in pairs:
        raise RuntimeError(f"{api}: Trtllm-gen kernels not found: q {q}, kv {kv}")


def check_out_dtype(out_dtype: torch.dtype | str | None, q_dtype: torch.dtype) -> torch.dtype:
    """The output dtype trtllm-gen writes: q's unless given, else fp16/bf16 ("Unsupported out_dtype")."""
    require(not isinstance(out_dtype, str), "nvfp4 outputs are not emulated", NotImplementedError)
    dtype = out_dtype or q_dtype
    require(dtype in (q_dtype, torch.float16, torch.bfloat16), f"Unsupported out_dtype: {dtype}")
    require(dtype != E4M3, "fp8 outputs are not emulated", NotImplementedError)
    return dtype


def check_workspace(buffer: torch.Tensor) -> None:
    require(buffer.dtype == torch.uint8 and buffer.dim() == 1, "workspace buffer must be a 1-D uint8 tensor")


def check_wrapper(what: str, workspace: torch.Tensor, kv_layout: str, backend: str) -> None:
    """What the paged prefill and decode wrappers both check when constructed (`what`: prefill, decode)."""
    check_workspace(workspace)
    require(kv_layout in ("NHD", "HND"), f"Invalid kv_layout {kv_layout}")
    require(backend in ("auto", "fa2", "fa3"), f"backend {backend!r} is not emulated", NotImplementedError)
    require(arch.major() >= 8, f"FlashInfer {what} needs compute capability 8.0 or newer", RuntimeError)
    require(backend != "fa3" or arch.major() == 9, "the fa3 backend runs on sm_90 only", RuntimeError)


def trtllm_backend(backend: str, api: str) -> str:
    """The backend trtllm_batch_* resolves to on this device, or the device's error."""
    major = arch.major()
    if backend == "auto":
        backend = "trtllm-gen" if major == 10 else "xqa"
    if backend == "trtllm-gen" and major not in TRTLLM_GEN_MAJORS:
        raise RuntimeError(f"{api}: trtllm-gen FMHA: Unsupported architecture sm_{arch.sm_version()}")
    if backend == "xqa":
        if major not in XQA_MAJORS:
            raise RuntimeError(f"{api}: xqa: unsupported compute capability sm_{arch.sm_version()}")
        raise NotImplementedError(f"{api}: the xqa backend is not emulated")
    require(backend == "trtllm-gen", f"unsupported backend {backend!r}")
    return backend


def scalar(value: float | torch.Tensor, name: str) -> float:
    if isinstance(value, torch.Tensor):
        require(value.dtype == torch.float32 and value.numel() == 1, f"{name} tensor must hold one float32")
        return float(value)
    return float(value)


def check_sinks(sinks: Any, num_heads: int) -> torch.Tensor | None:
    if sinks is None:
        return None
    require(isinstance(sinks, torch.Tensor), "sinks must be a tensor")
    require(
        sinks.shape == (num_heads,) and sinks.dtype == torch.float32, "sinks must be float32 [num_qo_heads]"
    )
    return sinks


def trtllm_batch_decode_with_kv_cache(
    query: torch.Tensor,
    kv_cache,
    workspace_buffer: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    max_seq_len: int,
    bmm1_scale: float | torch.Tensor = 1.0,
    bmm2_scale: float | torch.Tensor = 1.0,
    window_left: int = -1,
    out: torch.Tensor | None = None,
    out_dtype: torch.dtype | str | None = None,
    o_sf_scale: float | None = None,
    o_sf_vec_size: int | None = None,
    sinks: torch.Tensor | None = None,
    kv_layout: str = "HND",
    enable_pdl: bool | None = None,
    backend: str = "auto",
    q_len_per_req: int | None = 1,
    o_scale: float | None = 1.0,
    mask: torch.Tensor | None = None,
    max_q_len: int | None = None,
    cum_seq_lens_q: torch.Tensor | None = None,
    skip_softmax_threshold_scale_factor: float | None = None,
    kv_cache_sf: Any = None,
    uses_shared_paged_kv_idx: bool = True,
    lse: torch.Tensor | None = None,
    return_lse: bool = False,
    bmm1_scale_log2: torch.Tensor | None = None,
) -> torch.Tensor:
    api = "trtllm_batch_decode_with_kv_cache"
    not_emulated(api, o_sf_scale=(o_sf_scale, None), o_sf_vec_size=(o_sf_vec_size, None))
    not_emulated(api, q_len_per_req=(q_len_per_req, 1), o_scale=(o_scale, 1.0), mask=(mask, None))
    not_emulated(api, max_q_len=(max_q_len, None), cum_seq_lens_q=(cum_seq_lens_q, None), lse=(lse, None))
    not_emulated(
        api, skip_softmax=(skip_softmax_threshold_scale_factor, None), kv_cache_sf=(kv_cache_sf, None)
    )
    not_emulated(api, uses_shared=(uses_shared_paged_kv_idx, True), return_lse=(return_lse, False))
    trtllm_backend(backend, api)
    check_workspace(workspace_buffer)
    k, v, page_size, hkv, dim = split_cache(kv_cache, kv_layout)
    require(query.dim() == 3 and query.shape[-1] == dim, f"query must be [tokens, heads, {dim}]")
    kernels_not_found(api, query.dtype, k.dtype, TRTLLM_DECODE_PAIRS)
    dtype = check_out_dtype(out_dtype if out is None else out.dtype, query.dtype)
    batch, hq = query.shape[0], query.shape[1]
    require(hq % hkv == 0, "num_qo_heads must be a multiple of num_kv_heads")
    require(
        block_tables.dtype == torch.int32 and block_tables.shape[0] == batch, "block_tables: [B, pages] int32"
    )
    require(seq_lens.dtype == torch.int32 and seq_lens.shape == (batch,), "seq_lens: [B] int32")
    require(
        (int(seq_lens.max()) if seq_lens.numel() else 0) <= max_seq_len,
        "max_seq_len is below a sequence length",
    )
    sinks = check_sinks(sinks, hq)
    scale1, scale2 = scalar(bmm1_scale, "bmm1_scale"), scalar(bmm2_scale, "bmm2_scale")
    if bmm1_scale_log2 is not None:
        require(
            isinstance(bmm1_scale_log2, torch.Tensor), "bmm1_scale_log2 must be a torch.Tensor", TypeError
        )
        require(
            bmm1_scale_log2.dtype == torch.float32,
            "bmm1_scale_log2 tensor must have dtype float32",
            TypeError,
        )
        require(bmm1_scale_log2.numel() == 1, "bmm1_scale_log2 must be a single-element tensor")
        scale1 = float(bmm1_scale_log2) / LOG2E
    result = torch.zeros(query.shape, dtype=torch.float32)
    for b in range(batch):
        length = int(seq_lens[b])
        if length == 0:
            continue
        keys = gather_pages(k, kv_layout, block_tables[b], length)
        values = gather_pages(v, kv_layout, block_tables[b], length)
        result[b : b + 1] = attend(
            query[b : b + 1],
            keys,
            values,
            scale=scale1,
            causal=True,
            window_left=window_left,
            sinks=sinks,
            v_scale=scale2,
        )
    if out is not None:
        require(out.shape == query.shape, "out must be shaped like query")
        out.copy_(result)
        return out
    return result.to(dtype)


class BatchDecodeWithPagedKVCacheWrapper:
    """plan() once per batch, run() once per layer; run() before plan() raises. Emulates the fa2/fa3/auto
    backends with their CSR page description; trtllm-gen/cudnn backends are not emulated."""

    def __init__(
        self,
        float_workspace_buffer: torch.Tensor,
        kv_layout: str = "NHD",
        use_cuda_graph: bool = False,
        use_tensor_cores: bool = False,
        paged_kv_indptr_buffer: torch.Tensor | None = None,
        paged_kv_indices_buffer: torch.Tensor | None = None,
        paged_kv_last_page_len_buffer: torch.Tensor | None = None,
        backend: str = "auto",
        jit_args: list[Any] | None = None,
        jit_kwargs: dict[str, Any] | None = None,
    ) -> None:
        api = "BatchDecodeWithPagedKVCacheWrapper"
        check_wrapper("decode", float_workspace_buffer, kv_layout, backend)
        not_emulated(api, use_cuda_graph=(use_cuda_graph, False), jit_args=(jit_args, None))
        self._kv_layout = kv_layout
        self._plan: dict[str, Any] | None = None

    def plan(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        last_page_len: torch.Tensor,
        num_qo_heads: int,
        num_kv_heads: int,
        head_dim: int,
        page_size: int,
        *,
        pos_encoding_mode: str = "NONE",
        window_left: int = -1,
        logits_soft_cap: float | None = None,
        q_data_type: str | torch.dtype = "float16",
        kv_data_type: str | torch.dtype | None = None,
        o_data_type: str | torch.dtype | None = None,
        sm_scale: float | None = None,
        rope_scale: float | None = None,
        rope_theta: float | None = None,
        non_blocking: bool = True,
    ) -> None:
        api = "BatchDecodeWithPagedKVCacheWrapper.plan"
        not_emulated(api, pos_encoding_mode=(pos_encoding_mode, "NONE"), rope_scale=(rope_scale, None))
        not_emulated(api, rope_theta=(rope_theta, None))
        batch = check_csr(indptr, indices, last_page_len, page_size)
        require(num_qo_heads % num_kv_heads == 0, "num_qo_heads must be a multiple of num_kv_heads")
        require(head_dim in HEAD_DIMS, f"Unsupported head_dim: {head_dim}")
        q_dtype = as_dtype(q_data_type)
        kv_dtype = as_dtype(kv_data_type, q_dtype)
        require(q_dtype in Q_DTYPES, f"Unsupported q_data_type {q_dtype}")
        require(kv_dtype in KV_DTYPES, f"Unsupported kv_data_type {kv_dtype}")
        self._plan = {
            "batch": batch,
            "lengths": sequence_lengths(indptr, last_page_len, page_size),
            "indptr": indptr.clone(),
            "indices": indices,
            "heads": (num_qo_heads, num_kv_heads, head_dim),
            "page_size": page_size,
            "window_left": window_left,
            "softcap": float(logits_soft_cap or 0.0),
            "q_dtype": q_dtype,
            "kv_dtype": kv_dtype,
            "o_dtype": as_dtype(o_data_type, q_dtype),
            "sm_scale": sm_scale if sm_scale is not None else head_dim**-0.5,
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
        enable_pdl: bool | None = None,
        window_left: int | None = None,
        sinks: torch.Tensor | None = None,
        q_len_per_req: int | None = 1,
    ) -> torch.Tensor:
        api = "BatchDecodeWithPagedKVCacheWrapper.run"
        if self._plan is None:
            raise RuntimeError(f"{api}: plan() must be called before run()")
        not_emulated(api, q_scale=(q_scale, None), lse=(lse, None), return_lse=(return_lse, False))
        not_emulated(api, q_len_per_req=(q_len_per_req, 1))
        p = self._plan
        hq, hkv, dim = p["heads"]
        k, v, page_size, heads, head_dim = split_cache(paged_kv_cache, self._kv_layout)
        require(
            (heads, head_dim, page_size) == (hkv, dim, p["page_size"]), "kv cache does not match the plan"
        )
        require(q.shape == (p["batch"], hq, dim), f"q must be [{p['batch']}, {hq}, {dim}] as planned")
        require(q.dtype == p["q_dtype"] and k.dtype == p["kv_dtype"], "q/kv dtypes differ from the plan")
        require(window_left is None or window_left == p["window_left"], "window_left differs from the plan")
        for name, s in (("k_scale", k_scale), ("v_scale", v_scale)):
            require(s is None or isinstance(s, float), f"{name} must be a host float")
        sinks = check_sinks(sinks, hq)
        result = torch.zeros(q.shape, dtype=torch.float32)
        for b in range(p["batch"]):
            length = int(p["lengths"][b])
            pages = p["indices"][int(p["indptr"][b]) : int(p["indptr"][b + 1])]
            if length == 0:
                continue
            keys = gather_pages(k, self._kv_layout, pages, length)
            values = gather_pages(v, self._kv_layout, pages, length)
            result[b : b + 1] = attend(
                q[b : b + 1],
                keys,
                values,
                scale=p["sm_scale"] * (k_scale or 1.0),
                causal=True,
                window_left=p["window_left"],
                softcap=p["softcap"],
                sinks=sinks,
                v_scale=v_scale or 1.0,
            )
        if out is not None:
            out.copy_(result)
            return out
        return result.to(p["o_dtype"])
