"""Qwen3-MoE: Qwen3 attention; softmax top-k experts (renormalised when norm_topk_prob) on the sparse layers,
a dense MLP on `mlp_only_layers` and off the `decoder_sparse_step` grid."""

from __future__ import annotations

import torch

from .config import ModelConfig
from .decoder import CausalLM
from .layers.attention import CacheConfig
from .layers.moe import Routing
from .layers.moe_block import SparseMoEBlock
from .llama import dense_mlp
from .parallel import Parallel
from .qwen3 import qwen3_attention


def num_experts(config: ModelConfig) -> int:
    """transformers 5 writes num_local_experts; older checkpoints num_experts."""
    return config.get("num_experts") or config.num_local_experts


def is_sparse(config: ModelConfig, layer: int) -> bool:
    return (
        layer not in config.get("mlp_only_layers", [])
        and num_experts(config) > 0
        and (layer + 1) % config.get("decoder_sparse_step", 1) == 0
    )


class Qwen3MoeForCausalLM(CausalLM):
    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        routing = Routing(config.num_experts_per_tok, "softmax", config.get("norm_topk_prob", False))

        def make_layer(config, i, parallel, dtype, cache):
            if is_sparse(config, i):
                mlp = SparseMoEBlock(
                    num_experts(config),
                    config.hidden_size,
                    config.moe_intermediate_size,
                    routing,
                    parallel,
                    dtype=dtype,
                    quant=config.quantization,
                )
            else:
                mlp = dense_mlp(config, parallel, dtype)
            return qwen3_attention(config, i, parallel, dtype, cache), mlp

        super().__init__(config, make_layer, parallel, dtype, cache)
