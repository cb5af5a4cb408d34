"""Attention over a paged KV cache with attention.write_kv / prefill / decode.

Each layer binds the three ops once for its spec (heads, head dim, dtype, block size, KV layout) and owns its
cache, allocated in the layout the selected decode kernel reads. Every forward gets the batch's
AttentionMetadata (built once per forward by the engine): prefill tokens first, then one token per decode
sequence. The sliding window is per layer (-1: none); so are attention sinks (GPT-OSS: one learned logit per
query head that joins the softmax denominator), read from the checkpoint as `<attention module>.sinks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from torch import nn

from anyaccel.ops.attention import AttentionMetadata, AttentionSpec, kv_cache_spec
from anyaccel.ops.kv_cache import layout

from .module import Layer
from .ops import bind
from .weights import Span, WeightSlot, parent, sharded_copy

DEFAULT_BLOCK_SIZE = 16


@dataclass(frozen=True)
class CacheConfig:
    """block_size: token slots per cache block, None to take what the best decode kernel reads (16 when any
    size will do); kv_dtype: None for the model dtype (or an fp8 e4m3 type)."""

    block_size: int | None = None
    kv_dtype: torch.dtype | None = None


def choose_kv_cache(spec: AttentionSpec, block_size: int | None) -> AttentionSpec:
    """`spec` with the KV layout and block size the best decode kernel reads (block_size: the user's, or
    None); see anyaccel.ops.attention.kv_cache_spec."""
    return kv_cache_spec(replace(spec, block_size=DEFAULT_BLOCK_SIZE), block_size)


@dataclass
class ForwardMetadata(AttentionMetadata):
    """The op metadata plus what the model needs to choose between its bindings: whether any prefill
    sequence has cached tokens before its new ones (prefix-cache hits)."""

    has_prefix: bool = False


class Attention(Layer):
    """q: [T, Hq, D], k/v: [T, Hkv, D] (this rank's heads) -> [T, Hq, D].
    sinks: None, or the query heads this rank holds of the checkpoint's `sinks` tensor ([all query heads]
    float32, stored next to the projections): the layer then passes them to the attention ops."""

    def __init__(
        self,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        scale: float,
        *,
        dtype: torch.dtype,
        cache: CacheConfig,
        sliding_window: int = -1,
        sinks: Span | None = None,
    ):
        super().__init__()
        self.scale, self.window, self.sink_heads = scale, sliding_window, sinks
        self.sinks = (
            None
            if sinks is None
            else nn.Parameter(torch.empty(num_heads, dtype=torch.float32), requires_grad=False)
        )
        base = AttentionSpec(
            dtype,
            num_heads,
            num_kv_heads,
            head_dim,
            cache.kv_dtype,
            scale=scale,
            sliding_window=sliding_window,
            sinks=sinks is not None,
        )
        self.spec = choose_kv_cache(base, cache.block_size)
        self.write_kv = bind(self, "attention.write_kv", self.spec)
        self.prefill = bind(self, "attention.prefill", self.spec)
        self.prefill_after_prefix = bind(self, "attention.prefill", replace(self.spec, prefix=True))
        self.decode = bind(self, "attention.decode", self.spec)
        self.k_cache = self.v_cache = torch.empty(0)
        # An fp8 cache stores k / k_scale: calibrated scales come from the checkpoint (weight_slots), else 1.
        self.k_scale: torch.Tensor | None = torch.ones(1) if self.spec.fp8_kv else None
        self.v_scale: torch.Tensor | None = torch.ones(1) if self.spec.fp8_kv else None

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        """The calibrated KV-cache scales a checkpoint may hold, as llm-compressor ("self_attn.k_scale") or
        ModelOpt ("self_attn.k_proj.k_scale") store them: scalars, read for an fp8 cache, else ignored."""
        module = parent(prefix)
        for kind, scale in (("k", self.k_scale), ("v", self.v_scale)):
            load = None if scale is None else sharded_copy(scale)
            for name in (f"{module}{kind}_scale", f"{module}{kind}_proj.{kind}_scale"):
                yield WeightSlot(name, (), load, optional=True)
        if self.sinks is not None and self.sink_heads is not None:
            heads = self.sink_heads
            load = sharded_copy(self.sinks.data, 0, heads.start, self.sinks.shape[0])
            yield WeightSlot(f"{module}sinks", (heads.total,), load)

    def allocate_cache(self, num_blocks: int, device: torch.device) -> int:
        """Allocates this layer's cache; returns its size in bytes."""
        s = self.spec
        if self.k_scale is not None and self.v_scale is not None:
            self.k_scale, self.v_scale = self.k_scale.to(device), self.v_scale.to(device)
        self.k_cache, self.v_cache = layout(s.kv_layout).allocate(
            num_blocks, s.block_size, s.num_kv_heads, s.head_dim, s.cache_dtype, device
        )
        return self.k_cache.nbytes + self.v_cache.nbytes

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, meta: ForwardMetadata
    ) -> torch.Tensor:
        self.write_kv(k, v, self.k_cache, self.v_cache, meta.slot_mapping, self.k_scale, self.v_scale)
        p = meta.num_prefill_tokens
        outs = []
        if p:
            prefill = self.prefill_after_prefix if meta.has_prefix else self.prefill
            outs.append(
                prefill(
                    q[:p],
                    k[:p],
                    v[:p],
                    self.k_cache,
                    self.v_cache,
                    meta.prefill_block_tables,
                    meta.cu_seqlens_q,
                    meta.prefill_seq_lens,
                    meta.max_seqlen_q,
                    meta.prefill_max_seq_len,
                    self.scale,
                    True,
                    self.window,
                    sinks=self.sinks,
                    k_scale=self.k_scale,
                    v_scale=self.v_scale,
                )
            )
        if meta.num_decode_tokens:
            outs.append(
                self.decode(
                    q[p:],
                    self.k_cache,
                    self.v_cache,
                    meta.decode_block_tables,
                    meta.decode_seq_lens,
                    meta.decode_max_seq_len,
                    self.scale,
                    self.window,
                    sinks=self.sinks,
                    k_scale=self.k_scale,
                    v_scale=self.v_scale,
                )
            )
        return outs[0] if len(outs) == 1 else torch.cat(outs)
