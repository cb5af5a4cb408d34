"""Qwen3: Llama attention with RMSNorm over each head of q and k (q_norm, k_norm) before the rotation."""

from __future__ import annotations

import torch

from .config import ModelConfig
from .decoder import CausalLM
from .layers.attention import CacheConfig
from .llama import LlamaAttention, dense_mlp
from .parallel import Parallel


def qwen3_attention(
    config: ModelConfig, layer: int, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig
) -> LlamaAttention:
    bias = config.get("attention_bias", False)
    return LlamaAttention(config, layer, parallel, dtype, cache, qkv_bias=bias, o_bias=bias, qk_norm=True)


class Qwen3ForCausalLM(CausalLM):
    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        def make_layer(config, i, parallel, dtype, cache):
            return qwen3_attention(config, i, parallel, dtype, cache), dense_mlp(config, parallel, dtype)

        super().__init__(config, make_layer, parallel, dtype, cache)
