"""Llama (and the Llama-shaped Qwen2, with qkv bias, and Mistral, with a sliding window)."""

from __future__ import annotations

import torch

from anyaccel.ops.attention import AttentionMetadata

from .config import ModelConfig
from .decoder import CausalLM
from .layers.attention import Attention, CacheConfig
from .layers.linear import ColumnParallelLinear, RowParallelLinear, qkv_parts
from .layers.mlp import GatedMLP
from .layers.module import Layer
from .layers.norm import RMSNorm
from .layers.rotary import RotaryEmbedding
from .layers.weights import Span
from .parallel import Parallel


class LlamaAttention(Layer):
    """Grouped-query attention with rotary positions. qk_norm: RMSNorm over each head of q and k before the
    rotation (Qwen3); sinks: a learned per-head logit in the softmax denominator (GPT-OSS's `sinks`).
    hidden [T, H] -> [T, H]."""

    def __init__(
        self,
        config: ModelConfig,
        layer: int,
        parallel: Parallel,
        dtype: torch.dtype,
        cache: CacheConfig,
        *,
        qkv_bias: bool,
        o_bias: bool,
        qk_norm: bool = False,
        sinks: bool = False,
    ):
        super().__init__()
        d, h = config.head_dim, config.hidden_size
        parts = qkv_parts(config.num_attention_heads, config.num_key_value_heads, d, parallel)
        quant = config.quantization
        self.qkv_proj = ColumnParallelLinear(h, parts, bias=qkv_bias, dtype=dtype, quant=quant)
        self.o_proj = RowParallelLinear(
            config.num_attention_heads * d, h, parallel, bias=o_bias, dtype=dtype, quant=quant
        )
        self.sizes = [p.length for p in parts]
        self.heads, self.kv_heads, self.head_dim = parts[0].length // d, parts[1].length // d, d
        self.q_norm = RMSNorm(d, config.rms_norm_eps, dtype=dtype) if qk_norm else None
        self.k_norm = RMSNorm(d, config.rms_norm_eps, dtype=dtype) if qk_norm else None
        self.rotary_emb = RotaryEmbedding(config, d, self.heads, self.kv_heads, dtype=dtype)
        self.attn = Attention(
            self.heads,
            self.kv_heads,
            d,
            d**-0.5,
            dtype=dtype,
            cache=cache,
            sliding_window=config.sliding_window(layer),
            sinks=Span(config.num_attention_heads, parts[0].start // d, self.heads) if sinks else None,
        )

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor, meta: AttentionMetadata) -> torch.Tensor:
        t = hidden.shape[0]
        q, k, v = self.qkv_proj(hidden).split(self.sizes, dim=-1)
        q = q.view(t, self.heads, self.head_dim)
        k = k.view(t, self.kv_heads, self.head_dim)
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.rotary_emb(positions, q, k)
        out = self.attn(q, k, v.view(t, self.kv_heads, self.head_dim), meta)
        return self.o_proj(out.flatten(1))


def dense_mlp(config: ModelConfig, parallel: Parallel, dtype: torch.dtype) -> GatedMLP:
    if config.get("mlp_bias", False):
        raise ValueError(f"{config.path}: mlp_bias=true is not supported")
    return GatedMLP(
        config.hidden_size, config.intermediate_size, parallel, dtype=dtype, quant=config.quantization
    )


class LlamaForCausalLM(CausalLM):
    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        bias = config.get("attention_bias", False)

        def make_layer(config, i, parallel, dtype, cache):
            attn = LlamaAttention(config, i, parallel, dtype, cache, qkv_bias=bias, o_bias=bias)
            return attn, dense_mlp(config, parallel, dtype)

        super().__init__(config, make_layer, parallel, dtype, cache)


class Qwen2ForCausalLM(CausalLM):
    """Llama with a bias on the q/k/v projections (and none on o_proj)."""

    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        def make_layer(config, i, parallel, dtype, cache):
            attn = LlamaAttention(config, i, parallel, dtype, cache, qkv_bias=True, o_bias=False)
            return attn, dense_mlp(config, parallel, dtype)

        super().__init__(config, make_layer, parallel, dtype, cache)
