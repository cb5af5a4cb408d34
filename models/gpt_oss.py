"""GPT-OSS: grouped-query attention with biases on q/k/v/o and a learned sink logit per head, sliding-window
and full layers alternating as config.json's `layer_types` says, YaRN rope, and on every layer a mixture of
experts: a router with a bias (top-k of the logits, then a softmax over the k chosen), experts with biases and
the clamped SwiGLU (moe.experts' "swiglu_oai"). The experts may be stored as MXFP4 (gpt_oss_experts.py).

transformers' defaults apply where config.json leaves a value out (GptOssConfig): alternating layers starting
with a sliding one, YaRN rope of factor 32 over 4096 positions (not truncated), rope_theta 150000.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import ModelConfig
from .decoder import CausalLM
from .gpt_oss_experts import SWIGLU_ALPHA, SWIGLU_LIMIT, GptOssExperts, experts_quantization
from .layers.attention import CacheConfig
from .layers.linear import ReplicatedLinear
from .layers.module import Layer
from .layers.moe import Routing
from .llama import LlamaAttention
from .parallel import Parallel

# transformers' GptOssConfig defaults for the keys a config.json may leave out
DEFAULT_ROPE: dict[str, Any] = {
    "rope_type": "yarn",
    "factor": 32.0,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "truncate": False,
    "original_max_position_embeddings": 4096,
}
DEFAULT_ROPE_THETA = 150000.0
DEFAULT_SLIDING_WINDOW = 128


def with_defaults(config: ModelConfig) -> ModelConfig:
    """config with GptOssConfig's defaults filled in, and without its quantization_config: GPT-OSS
    checkpoints are dense or MXFP4, which quantizes the experts alone (every linear layer stays dense)."""
    raw = dict(config.raw)
    layers = config.num_hidden_layers
    if not raw.get("layer_types"):
        raw["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    if len(raw["layer_types"]) != layers:
        raise ValueError(
            f"{config.path}: layer_types has {len(raw['layer_types'])} entries for {layers} layers"
        )
    rope = dict(raw.get("rope_parameters") or raw.get("rope_scaling") or DEFAULT_ROPE)
    rope.setdefault("rope_theta", raw.get("rope_theta") or DEFAULT_ROPE_THETA)
    raw["rope_parameters"] = rope
    raw.setdefault("sliding_window", DEFAULT_SLIDING_WINDOW)
    alpha, limit = raw.get("swiglu_alpha", SWIGLU_ALPHA), raw.get("swiglu_limit", SWIGLU_LIMIT)
    if (alpha, limit) != (SWIGLU_ALPHA, SWIGLU_LIMIT):
        raise ValueError(
            f"{config.path}: swiglu_alpha={alpha}, swiglu_limit={limit}; moe.experts' swiglu_oai computes "
            f"GPT-OSS's {SWIGLU_ALPHA} and {SWIGLU_LIMIT} only"
        )
    experts_quantization(config)  # refuses other formats
    raw.pop("quantization_config", None)
    return ModelConfig(raw, config.path)


class GptOssMLP(Layer):
    """x [T, H] -> [T, H]: the router `router` ([E, H] weight and bias) picks top_k experts, whose outputs
    are summed with the softmax of the chosen logits as weights; one all-reduce over the ranks."""

    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, quant: str | None):
        super().__init__()
        self.parallel = parallel
        experts = config.num_local_experts
        self.router = ReplicatedLinear(config.hidden_size, experts, bias=True, dtype=dtype)
        # a softmax over all E renormalized over the top k equals GptOssTopKRouter's softmax over the k
        # chosen logits: the exponentials' common denominator cancels
        routing = Routing(config.num_experts_per_tok, "softmax", renormalize=True)
        self.experts = GptOssExperts(
            experts,
            config.hidden_size,
            config.intermediate_size,
            routing,
            parallel,
            dtype=dtype,
            quant=quant,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.parallel.all_reduce(self.experts(x, self.router(x)))


class GptOssForCausalLM(CausalLM):
    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        quant = experts_quantization(config)
        dense = with_defaults(config)
        bias = dense.get("attention_bias", True)

        def make_layer(dense, i, parallel, dtype, cache):
            attn = LlamaAttention(dense, i, parallel, dtype, cache, qkv_bias=bias, o_bias=bias, sinks=True)
            return attn, GptOssMLP(dense, parallel, dtype, quant)

        super().__init__(dense, make_layer, parallel, dtype, cache)
