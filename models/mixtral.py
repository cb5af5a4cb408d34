"""Mixtral: Llama attention (optionally windowed); every layer is a softmax top-k MoE whose experts are
stored as block_sparse_moe.experts.{e}.w1 (gate), w3 (up) and w2 (down)."""

from __future__ import annotations

import torch

from .config import ModelConfig
from .decoder import CausalLM
from .layers.attention import CacheConfig
from .layers.moe import ExpertNames, Routing
from .layers.moe_block import SparseMoEBlock
from .llama import LlamaAttention
from .parallel import Parallel

MIXTRAL_EXPERTS = ExpertNames(gate="w1", up="w3", down="w2")


class MixtralForCausalLM(CausalLM):
    mlp_name = "block_sparse_moe"

    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        routing = Routing(config.num_experts_per_tok, "softmax", renormalize=True)

        def make_layer(config, i, parallel, dtype, cache):
            attn = LlamaAttention(config, i, parallel, dtype, cache, qkv_bias=False, o_bias=False)
            moe = SparseMoEBlock(
                config.num_local_experts,
                config.hidden_size,
                config.intermediate_size,
                routing,
                parallel,
                dtype=dtype,
                names=MIXTRAL_EXPERTS,
                quant=config.quantization,
            )
            return attn, moe

        super().__init__(config, make_layer, parallel, dtype, cache)
