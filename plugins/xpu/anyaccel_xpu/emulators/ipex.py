"""Emulated `intel_extension_for_pytorch` (IPEX, archived; llm/modules/mha_fusion.py): the PagedAttention
class methods the plugin calls, standing for IPEX's last release.

`__version__` is the release it stands for (2.8.10+xpu): the plugin reads it to decide whether IPEX would
import against the installed torch (stack.py), and every function here raises as the import would when
the major.minor versions differ (IPEX refuses to load with another torch). A test sets `__version__` to
the installed torch's to emulate a matching IPEX.

    PagedAttention.flash_attn_varlen_func(out, q, k_cache, v_cache, cu_seqlens_q, cu_seqlens_kv,
        max_seqlen_q, max_seqlen_kv, scale, is_cusal, block_tables, alibi_slopes, window_size_left=-1,
        window_size_right=-1, kv_cache_dtype="auto", k_scale=1.0, v_scale=1.0, softcap=-1.0)
        NHD caches [P, block_size, Hkv, D]; CUMULATIVE KV lengths; queries at the last n_b positions.
    PagedAttention.reshape_and_cache_flash(key, value, key_cache, value_cache, slot_mapping,
        kv_cache_dtype="auto", k_scale=1.0, v_scale=1.0)   slots < 0 skipped.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from anyaccel.emulated_attention import attend_visible, gather_pages, visible

__version__ = "2.8.10+xpu"


def _loadable() -> None:
    from anyaccel_xpu.stack import major_minor

    if major_minor(__version__) != major_minor(torch.__version__):
        raise RuntimeError(
            "ERROR! Intel Extension for PyTorch needs to work with PyTorch "
            f"{major_minor(__version__)}.*, but "
            f"PyTorch {torch.__version__} is found"
        )


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RuntimeError(message)


class PagedAttention:
    @classmethod
    def flash_attn_varlen_func(
        cls,
        output,
        query,
        key_cache,
        value_cache,
        cu_seqlens_q,
        cu_seqlens_kv,
        max_seqlen_q,
        max_seqlen_kv,
        scale,
        is_cusal,
        block_tables,
        alibi_slopes,
        window_size_left=-1,
        window_size_right=-1,
        kv_cache_dtype="auto",
        k_scale=1.0,
        v_scale=1.0,
        softcap=-1.0,
    ):
        _loadable()
        _check(alibi_slopes is None, "alibi is not emulated")
        _check(kv_cache_dtype == "auto", "fp8 caches are not emulated")
        _check(
            query.dtype in (torch.float32, torch.float16, torch.bfloat16), f"unsupported dtype {query.dtype}"
        )
        _check(
            key_cache.dtype == query.dtype and value_cache.dtype == query.dtype,
            "q, k and v must share a dtype",
        )
        _check(query.dim() == 3 and query.is_contiguous(), "query must be a contiguous [T, Hq, D]")
        _check(key_cache.dim() == 4, "key_cache must be [num_blocks, block_size, num_heads, head_size]")
        _check(
            cu_seqlens_q.dtype == torch.int32 and cu_seqlens_kv.dtype == torch.int32, "lengths must be int32"
        )
        _check(block_tables.dtype == torch.int32, "block_tables must be int32")
        _check(output.shape == query.shape, "output must be shaped like query")
        cu_q, cu_kv = cu_seqlens_q.tolist(), cu_seqlens_kv.tolist()
        _check(len(cu_q) == len(cu_kv), "cu_seqlens_q and cu_seqlens_kv must have one entry per sequence + 1")
        for b in range(len(cu_q) - 1):
            n, length = cu_q[b + 1] - cu_q[b], cu_kv[b + 1] - cu_kv[b]
            if n == 0:
                continue
            _check(n <= max_seqlen_q and length <= max_seqlen_kv, f"sequence {b} exceeds the max lengths")
            if length == 0:
                output[cu_q[b] : cu_q[b + 1]] = 0
                continue
            keys = gather_pages(key_cache, "NHD", block_tables[b], length)
            values = gather_pages(value_cache, "NHD", block_tables[b], length)
            seen = visible(n, length, causal=is_cusal, left=window_size_left, right=window_size_right)
            rows = attend_visible(query[cu_q[b] : cu_q[b + 1]], keys, values, seen, scale, max(softcap, 0.0))
            output[cu_q[b] : cu_q[b + 1]] = rows.to(output.dtype)
        return output

    @classmethod
    def reshape_and_cache_flash(
        cls, key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype="auto", k_scale=1.0, v_scale=1.0
    ):
        _loadable()
        _check(kv_cache_dtype == "auto", "fp8 caches are not emulated")
        _check(key_cache.dtype == key.dtype, "cache and key must share a dtype")
        _check(key_cache.shape[2:] == key.shape[1:], "key_cache must be [num_blocks, block_size, Hkv, D]")
        keep = slot_mapping >= 0
        slots = slot_mapping[keep].long()
        key_cache.view(-1, *key_cache.shape[2:])[slots] = key[keep]
        value_cache.view(-1, *value_cache.shape[2:])[slots] = value[keep]


llm = SimpleNamespace(modules=SimpleNamespace(PagedAttention=PagedAttention))
