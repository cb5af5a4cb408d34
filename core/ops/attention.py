"""attention.prefill, attention.decode, attention.write_kv, and the per-batch metadata they share.

Conventions shared by the three ops
- Heads: Hq query heads, Hkv key/value heads, Hq % Hkv == 0 (GQA; query head h reads kv head h // (Hq/Hkv)).
- scale: multiplies q.k before everything else (usually D ** -0.5).
- sliding_window: W > 0 lets a query at position i see keys at positions j with i - W < j <= i (W keys
  including itself, the Mistral/HF convention; FlashAttention's window_left is W - 1). -1: no window.
- softcap: C > 0 replaces each scaled logit s by C * tanh(s / C) (Gemma 2, Grok). 0: off.
- sinks: [Hq] float32 or None. A per-head logit that joins the softmax denominator and contributes no value
  (GPT-OSS): p_j = exp(s_j) / (exp(sink_h) + sum_j exp(s_j)).
- KV cache: two tensors in the layout named by the spec (ops/kv_cache.py), dtype spec.kv_dtype. An fp8 cache
  (float8_e4m3fn / float8_e4m3fnuz) stores k / k_scale; k_scale and v_scale are float32 tensors of shape [1]
  and the true key is cache.float() * k_scale. They are None for non-fp8 caches.
- Output: a new tensor in q's dtype, [tokens, Hq, D]. Accumulation is fp32.

Two phases, as in FlashInfer's plan/run: once per forward the engine builds `AttentionMetadata` from the
batch (and calls the selected kernels' planners with it); every layer then calls the ops with tensors from
that metadata, so no layer recomputes lengths, indptrs or tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .base import OpDef, expect, expect_tensor
from .common import preferred_dtype
from .kv_cache import LAYOUTS

HEAD_DIMS = (64, 80, 96, 128, 256)
FP8_KV_DTYPES = (torch.float8_e4m3fn, torch.float8_e4m3fnuz)


@dataclass(frozen=True)
class AttentionSpec:
    """What a model will pass to the attention ops of one layer type. Booleans say whether a feature is
    used (its value is per call, so one binding serves layers with different windows)."""

    dtype: torch.dtype = torch.float32
    num_q_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    kv_dtype: torch.dtype | None = None  # None: same as dtype
    block_size: int = 16
    kv_layout: str = "NHD"
    sliding_window: bool = False
    softcap: bool = False
    sinks: bool = False
    prefix: bool = False  # prefill attends to cached prefix pages (chunked prefill / prefix caching)
    causal: bool = True

    @property
    def cache_dtype(self) -> torch.dtype:
        return self.kv_dtype or self.dtype

    @property
    def fp8_kv(self) -> bool:
        return self.cache_dtype in FP8_KV_DTYPES


def prefill(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int,
            scale: float, causal: bool = True, sliding_window: int = -1, softcap: float = 0.0,
            sinks: torch.Tensor | None = None, k_cache: torch.Tensor | None = None,
            v_cache: torch.Tensor | None = None, block_tables: torch.Tensor | None = None,
            prefix_lens: torch.Tensor | None = None, k_scale: torch.Tensor | None = None,
            v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Variable-length attention over the new tokens of B sequences packed together.

    q:            [T, Hq, D] (last dim contiguous); T = cu_seqlens[-1]
    k, v:         [T, Hkv, D], the new tokens' keys and values, packed like q
    cu_seqlens:   [B + 1] int32, cumulative new-token counts (0, n0, n0+n1, ...)
    max_seqlen:   max new tokens of one sequence (host int, for grid sizing)
    causal:       new token i of a sequence sees new tokens <= i (plus its whole cached prefix)
    Cached prefix (spec.prefix): k_cache/v_cache in spec.kv_layout, block_tables [B, max_blocks] int32 and
    prefix_lens [B] int32. Sequence b's keys are its prefix_lens[b] cached tokens followed by its new
    tokens, and new token i sits at absolute position prefix_lens[b] + i. The engine has already written
    the new tokens into the cache (attention.write_kv runs first), so a kernel may read them from k/v or
    from the cache: whichever its library prefers, with no conversion.
    Returns [T, Hq, D] in q's dtype.
    """
    raise NotImplementedError


def decode(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_tables: torch.Tensor,
           seq_lens: torch.Tensor, max_seq_len: int, scale: float, sliding_window: int = -1,
           softcap: float = 0.0, sinks: torch.Tensor | None = None, k_scale: torch.Tensor | None = None,
           v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """One new token per sequence attending to its whole paged history.

    q:            [B, Hq, D]
    k_cache, v_cache: the paged cache in spec.kv_layout, dtype spec.cache_dtype
    block_tables: [B, max_blocks] int32; entries past a sequence's last block are ignored
    seq_lens:     [B] int32, tokens in the cache for each sequence INCLUDING the new one (already written
                  by attention.write_kv); the query sits at position seq_lens[b] - 1
    max_seq_len:  host int upper bound of seq_lens (for split-KV grid sizing)
    Returns [B, Hq, D] in q's dtype. Sequences with seq_lens[b] == 0 (padding) return zeros.
    """
    raise NotImplementedError


def write_kv(k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
             slot_mapping: torch.Tensor, k_scale: torch.Tensor | None = None,
             v_scale: torch.Tensor | None = None) -> None:
    """Store new keys and values into the paged cache, IN PLACE.

    k, v:         [T, Hkv, D] in spec.dtype
    k_cache, v_cache: the cache in spec.kv_layout (mutated)
    slot_mapping: [T] int64, slot = block * block_size + offset; -1 marks a padded token that is skipped
    fp8 caches store (k / k_scale) rounded to the cache dtype with saturation to its finite range.
    """
    raise NotImplementedError


@dataclass
class AttentionMetadata:
    """Built once per forward from the batch; every layer's attention reads it. Prefill tokens come first.

    The fields are the arguments the ops take; `plans` holds what selected kernels' planners prepared
    (keyed by kernel name), for libraries with a plan/run split such as FlashInfer.
    """

    num_prefill_tokens: int
    num_decode_tokens: int
    slot_mapping: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64
    cu_seqlens: torch.Tensor | None = None  # [P + 1] int32, prefill sequences
    max_seqlen: int = 0
    prefix_lens: torch.Tensor | None = None  # [P] int32
    prefill_block_tables: torch.Tensor | None = None  # [P, max_blocks] int32
    seq_lens: torch.Tensor | None = None  # [D] int32, decode sequences
    decode_block_tables: torch.Tensor | None = None  # [D, max_blocks] int32
    max_seq_len: int = 0
    plans: dict[str, Any] = field(default_factory=dict)

    @property
    def has_prefix(self) -> bool:
        return self.prefix_lens is not None


def _fake_attention(q, *args, **kwargs):
    return torch.empty_like(q)


def _fake_write_kv(*args, **kwargs):
    return None


def _check_spec(op: str):
    def check(spec: AttentionSpec) -> None:
        expect(op, spec.num_q_heads % spec.num_kv_heads == 0,
               f"num_q_heads ({spec.num_q_heads}) must be a multiple of num_kv_heads ({spec.num_kv_heads})")
        expect(op, spec.head_dim in HEAD_DIMS or spec.head_dim % 8 == 0,
               f"head_dim must be one of {HEAD_DIMS} or a multiple of 8, got {spec.head_dim}")
        expect(op, spec.block_size > 0 and spec.block_size & (spec.block_size - 1) == 0,
               f"block_size must be a power of two, got {spec.block_size}")
        expect(op, spec.kv_layout in LAYOUTS, f"kv_layout must be one of {sorted(LAYOUTS)}, got {spec.kv_layout}")
        expect(op, spec.cache_dtype in (spec.dtype, *FP8_KV_DTYPES),
               f"kv_dtype must be the compute dtype or an fp8 e4m3 type, got {spec.cache_dtype}")

    return check


def _check_heads(op: str, spec: AttentionSpec, name: str, t, heads: int) -> None:
    expect_tensor(op, name, t, shape=(None, heads, spec.head_dim))
    expect(op, t.stride(-1) == 1, f"{name} must be contiguous in its last dim")


def _check_fp8_scales(op: str, spec: AttentionSpec, k_scale, v_scale) -> None:
    if spec.fp8_kv:
        expect(op, k_scale is not None and v_scale is not None, "an fp8 KV cache needs k_scale and v_scale")
    else:
        expect(op, k_scale is None and v_scale is None, "k_scale/v_scale are only for fp8 KV caches")


def _check_prefill(spec: AttentionSpec, q, k, v, cu_seqlens, max_seqlen, scale, causal=True, sliding_window=-1,
                   softcap=0.0, sinks=None, k_cache=None, v_cache=None, block_tables=None, prefix_lens=None,
                   k_scale=None, v_scale=None) -> None:
    op = "attention.prefill"
    _check_heads(op, spec, "q", q, spec.num_q_heads)
    _check_heads(op, spec, "k", k, spec.num_kv_heads)
    _check_heads(op, spec, "v", v, spec.num_kv_heads)
    expect_tensor(op, "cu_seqlens", cu_seqlens, dims=1, dtype=torch.int32)
    expect(op, (k_cache is not None) == spec.prefix, f"k_cache given={k_cache is not None}, spec.prefix={spec.prefix}")
    if spec.prefix:
        expect_tensor(op, "block_tables", block_tables, dims=2, dtype=torch.int32)
        expect_tensor(op, "prefix_lens", prefix_lens, shape=(cu_seqlens.numel() - 1,), dtype=torch.int32)
        _check_fp8_scales(op, spec, k_scale, v_scale)
    if sinks is not None:
        expect_tensor(op, "sinks", sinks, shape=(spec.num_q_heads,), dtype=torch.float32)


def _check_decode(spec: AttentionSpec, q, k_cache, v_cache, block_tables, seq_lens, max_seq_len, scale,
                  sliding_window=-1, softcap=0.0, sinks=None, k_scale=None, v_scale=None) -> None:
    op = "attention.decode"
    _check_heads(op, spec, "q", q, spec.num_q_heads)
    expect_tensor(op, "k_cache", k_cache, dtype=spec.cache_dtype)
    expect_tensor(op, "v_cache", v_cache, dtype=spec.cache_dtype)
    expect_tensor(op, "block_tables", block_tables, dims=2, dtype=torch.int32)
    expect_tensor(op, "seq_lens", seq_lens, shape=(q.shape[0],), dtype=torch.int32)
    _check_fp8_scales(op, spec, k_scale, v_scale)
    if sinks is not None:
        expect_tensor(op, "sinks", sinks, shape=(spec.num_q_heads,), dtype=torch.float32)


def _check_write_kv(spec: AttentionSpec, k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None) -> None:
    op = "attention.write_kv"
    _check_heads(op, spec, "k", k, spec.num_kv_heads)
    _check_heads(op, spec, "v", v, spec.num_kv_heads)
    expect_tensor(op, "k_cache", k_cache, dtype=spec.cache_dtype)
    expect_tensor(op, "slot_mapping", slot_mapping, shape=(k.shape[0],), dtype=torch.int64)
    _check_fp8_scales(op, spec, k_scale, v_scale)


def _default(platform) -> AttentionSpec:
    return AttentionSpec(dtype=preferred_dtype(platform))


PREFILL = OpDef("attention.prefill", prefill, AttentionSpec, _fake_attention, _default,
                check_spec=_check_spec("attention.prefill"), check_args=_check_prefill)
DECODE = OpDef("attention.decode", decode, AttentionSpec, _fake_attention, _default,
               check_spec=_check_spec("attention.decode"), check_args=_check_decode)
WRITE_KV = OpDef("attention.write_kv", write_kv, AttentionSpec, _fake_write_kv, _default,
                 mutates=("k_cache", "v_cache"), check_spec=_check_spec("attention.write_kv"),
                 check_args=_check_write_kv)
