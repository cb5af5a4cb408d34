"""attention.prefill, attention.decode, attention.write_kv, and the per-batch metadata they share.

Conventions shared by the three ops
- Heads: Hq query heads, Hkv key/value heads, Hq % Hkv == 0 (GQA; query head h reads kv head h // (Hq/Hkv)).
- scale: multiplies q.k before everything else (usually D ** -0.5).
- sliding_window: W > 0 lets a query at position i see keys at positions j with i - W < j <= i (W keys
  including itself, the Mistral/HF convention; FlashAttention's window_left is W - 1). -1: no window.
  A window needs causal attention.
- softcap: C > 0 replaces each scaled logit s by C * tanh(s / C) (Gemma 2, Grok). 0: off.
- sinks: [Hq] float32 or None. A per-head logit that joins the softmax denominator and contributes no value
  (GPT-OSS): p_j = exp(s_j) / (exp(sink_h) + sum_j exp(s_j)).
- KV cache: two tensors (keys, values) in the layout named by spec.kv_layout (ops/kv_cache.py), dtype
  spec.cache_dtype. An fp8 cache (float8_e4m3fn / float8_e4m3fnuz) stores k / k_scale; k_scale and v_scale are
  float32 tensors of shape [1] and the true key is cache.float() * k_scale. They are None for other caches.
- Per-layer constants: k_scale, v_scale and sinks are set when the model is loaded and never change, and
  `scale`, `sliding_window`, `softcap` and `causal` equal the spec's values on every call. So a library that
  wants them in another form (host floats, bf16 sinks, values fixed at plan time) converts them once per
  tensor or per binding, never per call.
- Output: a new tensor in q's dtype, [tokens, Hq, D]. Accumulation is fp32.

Two phases, as in FlashInfer's plan/run: once per forward the engine builds `AttentionMetadata` from the
batch and calls `Resolution.plan(metadata)` for every bound attention kernel; every layer then calls the ops
with tensors from that metadata, so no layer recomputes lengths, indptrs or tables (docs/ops.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .base import OpDef, expect, expect_range, expect_tensor
from .common import preferred_dtype
from .kv_cache import check_pages, layout, layouts

HEAD_DIMS = (64, 80, 96, 128, 256)
FP8_KV_DTYPES = (torch.float8_e4m3fn, torch.float8_e4m3fnuz)


@dataclass(frozen=True)
class AttentionSpec:
    """What a model will pass to the attention ops of one layer type.

    The score modifiers are VALUES, not flags: libraries with a plan phase (FlashInfer) fix the scale, window
    and soft-cap when planning, before any layer runs, so layers that differ in them (Gemma's sliding and
    global layers) are bound, and planned, separately. The per-call arguments repeat these values.
    """

    dtype: torch.dtype = torch.float32
    num_q_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    kv_dtype: torch.dtype | None = None  # None: same as dtype
    block_size: int = 16
    kv_layout: str = "NHD"
    scale: float | None = None  # None: head_dim ** -0.5
    sliding_window: int = -1  # W > 0, or -1 for none
    softcap: float = 0.0  # C > 0, or 0 for none
    sinks: bool = False  # a sinks tensor is passed
    prefix: bool = False  # prefill sequences may have cached tokens before their new ones
    causal: bool = True

    @property
    def cache_dtype(self) -> torch.dtype:
        return self.kv_dtype or self.dtype

    @property
    def fp8_kv(self) -> bool:
        return self.cache_dtype in FP8_KV_DTYPES

    @property
    def softmax_scale(self) -> float:
        return self.scale if self.scale is not None else self.head_dim**-0.5


def prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    seq_lens: torch.Tensor,
    max_seqlen_q: int,
    max_seq_len: int,
    scale: float,
    causal: bool = True,
    sliding_window: int = -1,
    softcap: float = 0.0,
    sinks: torch.Tensor | None = None,
    k_scale: torch.Tensor | None = None,
    v_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Variable-length attention for the new tokens of B sequences packed together (prefill, chunked
    prefill and prefix-cache hits).

    q:            [T, Hq, D] (last dim contiguous); T = cu_seqlens_q[-1]
    k, v:         [T, Hkv, D] in spec.dtype, the new tokens' keys and values, packed like q
    k_cache, v_cache: the paged cache in spec.kv_layout. attention.write_kv has ALREADY stored the new
                  tokens, so the cache holds each sequence's seq_lens[b] tokens.
    block_tables: [B, max_blocks] int32; entries past a sequence's last block are ignored (may be -1)
    cu_seqlens_q: [B + 1] int32, cumulative new-token counts (0, n0, n0+n1, ...)
    seq_lens:     [B] int32, tokens of sequence b including its new ones; p_b = seq_lens[b] - n_b cached
                  tokens precede them, and new token i sits at position p_b + i. Without spec.prefix
                  seq_lens[b] == n_b.
    max_seqlen_q: host int >= max n_b; max_seq_len: host int >= max seq_lens (grid sizing)
    causal:       token at position i sees positions <= i (its whole cached prefix and new tokens up to it);
                  non-causal: every token of its sequence
    Keys/values at positions >= p_b are k/v as given, the cached prefix comes from the cache (dequantized
    for fp8). A kernel may read all positions from the cache instead, whichever its library prefers: for
    fp16/bf16/fp32 caches the two agree exactly; for fp8 they differ by the cache's rounding of new tokens.
    Returns [T, Hq, D] in q's dtype.
    """
    raise NotImplementedError


def decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    max_seq_len: int,
    scale: float,
    sliding_window: int = -1,
    softcap: float = 0.0,
    sinks: torch.Tensor | None = None,
    k_scale: torch.Tensor | None = None,
    v_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """One new token per sequence attending to its whole paged history.

    q:            [B, Hq, D]
    k_cache, v_cache: the paged cache in spec.kv_layout, dtype spec.cache_dtype
    block_tables: [B, max_blocks] int32; entries past a sequence's last block are ignored (may be -1)
    seq_lens:     [B] int32, tokens in the cache for each sequence INCLUDING the new one (already written
                  by attention.write_kv); the query sits at position seq_lens[b] - 1
    max_seq_len:  host int upper bound of seq_lens (for split-KV grid sizing)
    Returns [B, Hq, D] in q's dtype. Sequences with seq_lens[b] == 0 (padding) return zeros.
    """
    raise NotImplementedError


def write_kv(
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
    k_scale: torch.Tensor | None = None,
    v_scale: torch.Tensor | None = None,
) -> None:
    """Store new keys and values into the paged cache, IN PLACE.

    k, v:         [T, Hkv, D] in spec.dtype
    k_cache, v_cache: the cache in spec.kv_layout (mutated)
    slot_mapping: [T] int64, slot = block * block_size + offset; -1 marks a padded token that is skipped.
                  Valid slots are distinct.
    fp8 caches store (k / k_scale) rounded to nearest in the cache dtype, saturated to its finite range
    (+-448 for e4m3fn, +-240 for e4m3fnuz).
    """
    raise NotImplementedError


@dataclass
class AttentionMetadata:
    """Built once per forward from the batch; every layer's attention reads it. Prefill tokens come first.

    The fields are the arguments the ops take; `plans` holds what the bound kernels' planners prepared from
    them (keyed by kernel name): FlashInfer's planned wrappers, host lists of lengths for Ascend, masks.
    """

    num_prefill_tokens: int
    num_decode_tokens: int
    slot_mapping: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64
    cu_seqlens_q: torch.Tensor | None = None  # [P + 1] int32, prefill sequences
    max_seqlen_q: int = 0
    prefill_seq_lens: torch.Tensor | None = None  # [P] int32, cached + new tokens
    prefill_max_seq_len: int = 0
    prefill_block_tables: torch.Tensor | None = None  # [P, max_blocks] int32
    decode_seq_lens: torch.Tensor | None = None  # [D] int32
    decode_max_seq_len: int = 0
    decode_block_tables: torch.Tensor | None = None  # [D, max_blocks] int32
    plans: dict[str, Any] = field(default_factory=dict)

    @property
    def num_prefills(self) -> int:
        return 0 if self.cu_seqlens_q is None else self.cu_seqlens_q.numel() - 1

    @property
    def num_decodes(self) -> int:
        return 0 if self.decode_seq_lens is None else self.decode_seq_lens.numel()


def _fake_attention(q, *args, **kwargs):
    return torch.empty_like(q)


def _fake_write_kv(*args, **kwargs):
    return None


def _check_spec(op: str):
    def check(spec: AttentionSpec) -> None:
        expect(
            op,
            spec.num_kv_heads > 0 and spec.num_q_heads % spec.num_kv_heads == 0,
            f"num_q_heads ({spec.num_q_heads}) must be a multiple of num_kv_heads ({spec.num_kv_heads})",
        )
        expect(
            op,
            spec.head_dim in HEAD_DIMS or (spec.head_dim > 0 and spec.head_dim % 8 == 0),
            f"head_dim must be one of {HEAD_DIMS} or a multiple of 8, got {spec.head_dim}",
        )
        expect(
            op,
            spec.block_size > 0 and spec.block_size & (spec.block_size - 1) == 0,
            f"block_size must be a power of two, got {spec.block_size}",
        )
        known = layouts()
        expect(op, spec.kv_layout in known, f"kv_layout must be one of {sorted(known)}, got {spec.kv_layout}")
        expect(
            op,
            spec.cache_dtype in (spec.dtype, *FP8_KV_DTYPES),
            f"kv_dtype must be the compute dtype or an fp8 e4m3 type, got {spec.cache_dtype}",
        )
        window = spec.sliding_window
        expect(
            op,
            type(window) is int and (window == -1 or window > 0),
            f"sliding_window must be an int W > 0 or -1 (the window size, not a flag), got {window!r}",
        )
        expect(op, window == -1 or spec.causal, "a sliding window needs causal attention")
        expect(
            op,
            not isinstance(spec.softcap, bool) and spec.softcap >= 0,
            f"softcap must be a float C >= 0 (the cap, not a flag), got {spec.softcap!r}",
        )
        expect(op, spec.scale is None or spec.scale > 0, f"scale must be positive or None, got {spec.scale}")

    return check


def _check_heads(op: str, spec: AttentionSpec, name: str, t, heads: int) -> None:
    expect_tensor(op, name, t, shape=(None, heads, spec.head_dim))
    expect(op, t.stride(-1) == 1, f"{name} must be contiguous in its last dim")


def _check_cache_shape(op: str, spec: AttentionSpec, k_cache, v_cache) -> int:
    """The caches are the spec's layout, block size, heads and head dim (every layout leads with its
    blocks); returns the number of blocks."""
    expect_tensor(op, "k_cache", k_cache, dtype=spec.cache_dtype)
    expect_tensor(op, "v_cache", v_cache, dtype=spec.cache_dtype)
    expect(op, k_cache.dim() > 0, "k_cache must have a leading blocks dim")
    num_blocks, kv = k_cache.shape[0], layout(spec.kv_layout)
    args = (num_blocks, spec.block_size, spec.num_kv_heads, spec.head_dim)
    expect_tensor(op, "k_cache", k_cache, shape=kv.k_shape(*args))
    expect_tensor(op, "v_cache", v_cache, shape=kv.v_shape(*args))
    return num_blocks


def _check_cache(op: str, spec: AttentionSpec, k_cache, v_cache, block_tables) -> int:
    expect_tensor(op, "block_tables", block_tables, dims=2, dtype=torch.int32)
    return _check_cache_shape(op, spec, k_cache, v_cache)


def _check_values(
    op: str, spec: AttentionSpec, scale, sliding_window, softcap, sinks, k_scale, v_scale
) -> None:
    """The per-call values must be the spec's (kernels may have fixed them when bound or planned)."""
    expect(
        op,
        math.isclose(scale, spec.softmax_scale, rel_tol=1e-6),
        f"scale {scale} differs from the spec's {spec.softmax_scale}",
    )
    expect(
        op,
        sliding_window == spec.sliding_window and softcap == spec.softcap,
        f"sliding_window/softcap ({sliding_window}, {softcap}) differ from the spec's "
        f"({spec.sliding_window}, {spec.softcap})",
    )
    expect(op, (sinks is not None) == spec.sinks, f"sinks given={sinks is not None}, spec.sinks={spec.sinks}")
    if sinks is not None:
        expect_tensor(op, "sinks", sinks, shape=(spec.num_q_heads,), dtype=torch.float32)
    _check_fp8_scales(op, spec, k_scale, v_scale)


def _check_fp8_scales(op: str, spec: AttentionSpec, k_scale, v_scale) -> None:
    if spec.fp8_kv:
        expect(op, k_scale is not None and v_scale is not None, "an fp8 KV cache needs k_scale and v_scale")
        expect_tensor(op, "k_scale", k_scale, shape=(1,), dtype=torch.float32)
        expect_tensor(op, "v_scale", v_scale, shape=(1,), dtype=torch.float32)
    else:
        expect(op, k_scale is None and v_scale is None, "k_scale/v_scale are only for fp8 KV caches")


def _check_prefill(
    spec: AttentionSpec,
    q,
    k,
    v,
    k_cache,
    v_cache,
    block_tables,
    cu_seqlens_q,
    seq_lens,
    max_seqlen_q,
    max_seq_len,
    scale,
    causal=True,
    sliding_window=-1,
    softcap=0.0,
    sinks=None,
    k_scale=None,
    v_scale=None,
) -> None:
    op = "attention.prefill"
    _check_heads(op, spec, "q", q, spec.num_q_heads)
    _check_heads(op, spec, "k", k, spec.num_kv_heads)
    _check_heads(op, spec, "v", v, spec.num_kv_heads)
    num_blocks = _check_cache(op, spec, k_cache, v_cache, block_tables)
    expect_tensor(op, "cu_seqlens_q", cu_seqlens_q, dims=1, dtype=torch.int32)
    batch = cu_seqlens_q.numel() - 1
    expect_tensor(op, "seq_lens", seq_lens, shape=(batch,), dtype=torch.int32)
    expect_tensor(op, "block_tables", block_tables, shape=(batch, None))
    expect(op, causal == spec.causal, f"causal={causal} differs from the spec's {spec.causal}")
    new = cu_seqlens_q.diff()
    expect(
        op,
        batch >= 0 and int(cu_seqlens_q[0]) == 0 and int(cu_seqlens_q[-1]) == q.shape[0],
        f"cu_seqlens_q must run from 0 to the {q.shape[0]} tokens of q",
    )
    expect_range(op, "cu_seqlens_q steps", new, 0, max_seqlen_q + 1, "(max_seqlen_q)")
    check_pages(op, block_tables, seq_lens, spec.block_size, num_blocks, max_seq_len)
    expect(
        op,
        bool((seq_lens >= new).all()) and (spec.prefix or bool((seq_lens == new).all())),
        "seq_lens must be >= the new-token counts, and equal to them without spec.prefix",
    )
    _check_values(op, spec, scale, sliding_window, softcap, sinks, k_scale, v_scale)


def _check_decode(
    spec: AttentionSpec,
    q,
    k_cache,
    v_cache,
    block_tables,
    seq_lens,
    max_seq_len,
    scale,
    sliding_window=-1,
    softcap=0.0,
    sinks=None,
    k_scale=None,
    v_scale=None,
) -> None:
    op = "attention.decode"
    _check_heads(op, spec, "q", q, spec.num_q_heads)
    num_blocks = _check_cache(op, spec, k_cache, v_cache, block_tables)
    expect_tensor(op, "seq_lens", seq_lens, shape=(q.shape[0],), dtype=torch.int32)
    expect_tensor(op, "block_tables", block_tables, shape=(q.shape[0], None))
    _check_values(op, spec, scale, sliding_window, softcap, sinks, k_scale, v_scale)
    check_pages(op, block_tables, seq_lens, spec.block_size, num_blocks, max_seq_len)


def _check_write_kv(
    spec: AttentionSpec, k, v, k_cache, v_cache, slot_mapping, k_scale=None, v_scale=None
) -> None:
    op = "attention.write_kv"
    _check_heads(op, spec, "k", k, spec.num_kv_heads)
    _check_heads(op, spec, "v", v, spec.num_kv_heads)
    num_slots = _check_cache_shape(op, spec, k_cache, v_cache) * spec.block_size
    expect_tensor(op, "slot_mapping", slot_mapping, shape=(k.shape[0],), dtype=torch.int64)
    _check_fp8_scales(op, spec, k_scale, v_scale)
    expect_range(op, "slot_mapping", slot_mapping, -1, num_slots, f"(the cache has {num_slots} slots)")
    valid = slot_mapping[slot_mapping >= 0]
    expect(op, valid.unique().numel() == valid.numel(), "slot_mapping names a slot twice")


def kv_cache_spec(spec: AttentionSpec, block_size: int | None = None, platform=None) -> AttentionSpec:
    """`spec` with the KV layout and block size the best decode kernel reads: the cache a model allocates.
    Decode is resolved in every known layout for `block_size` if fixed, else for the spec's block size and
    every size a decode kernel declares (one reading only 128-token pages, say); the best-ranked selection
    wins, so a vendor kernel with its own layout or block size beats a reference that reads any; among a
    kernel's sizes the spec's, else its smallest, is taken. Raises ResolutionError when no decode kernel
    serves any."""
    from dataclasses import replace

    from anyaccel import context
    from anyaccel.dispatch import rank, resolve
    from anyaccel.errors import ResolutionError

    declared = {n for k in context.get().kernels_for("attention.decode") for n in k.kv_block_sizes}
    sizes = [block_size] if block_size else [spec.block_size, *sorted(declared - {spec.block_size})]
    resolutions = [
        resolve("attention.decode", replace(spec, kv_layout=name, block_size=size), platform)
        for size in sizes
        for name in layouts()
    ]
    by_kernel: dict[Any, AttentionSpec] = {}
    for r in resolutions:
        if r.selected is not None:
            by_kernel.setdefault(r.selected, r.spec)  # the first size tried that it reads
    if not by_kernel:
        raise ResolutionError(resolutions[0].error)
    return by_kernel[rank(list(by_kernel))[0]]


def _default(platform) -> AttentionSpec:
    """The platform's preferred dtype in the cache a model would get there (kv_cache_spec), so `info` and
    `explain` show the kernels that would run."""
    from anyaccel.errors import ResolutionError

    spec = AttentionSpec(dtype=preferred_dtype(platform))
    try:
        return kv_cache_spec(spec, platform=platform)
    except ResolutionError:
        return spec


PREFILL = OpDef(
    "attention.prefill",
    prefill,
    AttentionSpec,
    _fake_attention,
    _default,
    check_spec=_check_spec("attention.prefill"),
    check_args=_check_prefill,
)
DECODE = OpDef(
    "attention.decode",
    decode,
    AttentionSpec,
    _fake_attention,
    _default,
    check_spec=_check_spec("attention.decode"),
    check_args=_check_decode,
)
WRITE_KV = OpDef(
    "attention.write_kv",
    write_kv,
    AttentionSpec,
    _fake_write_kv,
    _default,
    mutates=("k_cache", "v_cache"),
    check_spec=_check_spec("attention.write_kv"),
    check_args=_check_write_kv,
)
