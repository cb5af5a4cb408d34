"""DeepSeek-V3: multi-head latent attention (MLA), sigmoid grouped top-k routing with a correction bias and
routed scaling, shared experts, and dense MLPs in the first `first_k_dense_replace` layers.

MLA is expressed on the standard attention ops in its simple (non-absorbed) form: the compressed latent is
decompressed per token into per-head keys [k_nope, k_rope] and values, and both are stored in the paged cache
with head dim qk_nope + qk_rope (values zero-padded to it; the padding is dropped after attention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from anyaccel.ops.attention import AttentionMetadata

from .config import ModelConfig
from .decoder import CausalLM
from .layers.attention import Attention, CacheConfig
from .layers.linear import ColumnParallelLinear, ReplicatedLinear, RowParallelLinear
from .layers.mlp import GatedMLP
from .layers.module import Layer
from .layers.moe import Routing
from .layers.moe_block import SparseMoEBlock
from .layers.norm import RMSNorm
from .layers.rotary import RotaryEmbedding, rope_parameters
from .parallel import Parallel


def softmax_scale(config: ModelConfig) -> float:
    """qk_head_dim ** -0.5, times yarn's mscale(factor, mscale_all_dim) squared when rope scaling is yarn."""
    scale = (config.qk_nope_head_dim + config.qk_rope_head_dim) ** -0.5
    p = rope_parameters(config)
    if p["rope_type"] == "yarn" and p.get("mscale_all_dim") and p["factor"] > 1:
        mscale = 0.1 * p["mscale_all_dim"] * math.log(p["factor"]) + 1.0
        scale *= mscale * mscale
    return scale


class MLAttention(Layer):
    """hidden [T, H] -> [T, H]."""

    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        super().__init__()
        c, h, eps = config, config.hidden_size, config.rms_norm_eps
        self.nope, self.rope_dim, self.v_dim, self.latent = (
            c.qk_nope_head_dim,
            c.qk_rope_head_dim,
            c.v_head_dim,
            c.kv_lora_rank,
        )
        qk = self.nope + self.rope_dim
        heads, bias, quant = c.num_attention_heads, c.get("attention_bias", False), c.quantization
        if c.get("q_lora_rank"):
            self.q_a_proj = ReplicatedLinear(h, c.q_lora_rank, bias=bias, dtype=dtype, quant=quant)
            self.q_a_layernorm = RMSNorm(c.q_lora_rank, eps, dtype=dtype)
            self.q_b_proj = ColumnParallelLinear.split(
                c.q_lora_rank, heads * qk, parallel, dtype=dtype, quant=quant
            )
        else:
            self.q_proj = ColumnParallelLinear.split(h, heads * qk, parallel, dtype=dtype, quant=quant)
        self.kv_a_proj_with_mqa = ReplicatedLinear(
            h, self.latent + self.rope_dim, bias=bias, dtype=dtype, quant=quant
        )
        self.kv_a_layernorm = RMSNorm(self.latent, eps, dtype=dtype)
        self.kv_b_proj = ColumnParallelLinear.split(
            self.latent, heads * (self.nope + self.v_dim), parallel, dtype=dtype, quant=quant
        )
        self.o_proj = RowParallelLinear(heads * self.v_dim, h, parallel, bias=bias, dtype=dtype, quant=quant)
        self.heads = heads // parallel.world_size
        self.rotary_emb = RotaryEmbedding(
            config, self.rope_dim, self.heads, 1, dtype=dtype, is_neox=not c.get("rope_interleave", True)
        )
        self.attn = Attention(self.heads, self.heads, qk, softmax_scale(config), dtype=dtype, cache=cache)

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor, meta: AttentionMetadata) -> torch.Tensor:
        t = hidden.shape[0]
        if hasattr(self, "q_a_proj"):
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(hidden)))
        else:
            q = self.q_proj(hidden)
        q_nope, q_rope = q.view(t, self.heads, -1).split([self.nope, self.rope_dim], dim=-1)
        latent, k_rope = self.kv_a_proj_with_mqa(hidden).split([self.latent, self.rope_dim], dim=-1)
        q_rope, k_rope = self.rotary_emb(positions, q_rope, k_rope.reshape(t, 1, self.rope_dim))
        kv = self.kv_b_proj(self.kv_a_layernorm(latent)).view(t, self.heads, -1)
        k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
        q = torch.cat((q_nope, q_rope), dim=-1)
        k = torch.cat((k_nope, k_rope.expand(t, self.heads, self.rope_dim)), dim=-1)
        v = F.pad(v, (0, self.nope + self.rope_dim - self.v_dim))
        out = self.attn(q, k, v, meta)[..., : self.v_dim]
        return self.o_proj(out.flatten(1))


class DeepseekV3ForCausalLM(CausalLM):
    def __init__(self, config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig):
        c = config
        routing = Routing(
            c.num_experts_per_tok,
            "sigmoid",
            c.get("norm_topk_prob", True),
            c.get("n_group", 1),
            c.get("topk_group", 1),
            correction_bias=True,
            routed_scaling_factor=c.get("routed_scaling_factor", 1.0),
        )

        quant = c.quantization

        def make_layer(config, i, parallel, dtype, cache):
            attn = MLAttention(config, parallel, dtype, cache)
            if i < c.get("first_k_dense_replace", 0):
                return attn, GatedMLP(c.hidden_size, c.intermediate_size, parallel, dtype=dtype, quant=quant)
            shared = (
                GatedMLP(
                    c.hidden_size,
                    c.moe_intermediate_size * c.n_shared_experts,
                    parallel,
                    dtype=dtype,
                    reduce=False,
                    quant=quant,
                )
                if c.get("n_shared_experts")
                else None
            )
            moe = SparseMoEBlock(
                c.n_routed_experts,
                c.hidden_size,
                c.moe_intermediate_size,
                routing,
                parallel,
                dtype=dtype,
                shared_experts=shared,
                router_dtype=torch.float32,
                quant=quant,
            )
            return attn, moe

        super().__init__(config, make_layer, parallel, dtype, cache)
        # Multi-token-prediction layers follow the last decoder layer in the checkpoint; inference skips them.
        extra = range(c.num_hidden_layers, c.num_hidden_layers + c.get("num_nextn_predict_layers", 0))
        self.ignored = tuple(f"model.layers.{i}." for i in extra)
