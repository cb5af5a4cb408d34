"""The pre-norm decoder shared by every architecture: embed -> N x (attention, MLP) -> norm -> LM head.

An architecture supplies its attention and MLP modules per layer; this file owns the residual stream
(norm.add_rms_norm fuses each residual add with the next norm) and the (tied) vocab-parallel LM head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from anyaccel.ops.attention import AttentionMetadata

from .config import ModelConfig
from .layers.attention import CacheConfig
from .layers.embedding import ParallelLMHead, VocabParallelEmbedding
from .layers.module import Layer
from .layers.norm import RMSNorm
from .parallel import Parallel


class DecoderLayer(Layer):
    """`mlp_name` is the MLP's module name in the checkpoint ("mlp"; Mixtral's "block_sparse_moe")."""

    def __init__(
        self,
        self_attn: nn.Module,
        mlp: nn.Module,
        config: ModelConfig,
        dtype: torch.dtype,
        mlp_name: str = "mlp",
    ):
        super().__init__()
        self.self_attn, self.mlp_name = self_attn, mlp_name
        self.add_module(mlp_name, mlp)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype=dtype)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype=dtype)

    def forward(
        self,
        positions: torch.Tensor,
        hidden: torch.Tensor,
        residual: torch.Tensor | None,
        meta: AttentionMetadata,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual, hidden = hidden, self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.self_attn(positions, hidden, meta)
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        return getattr(self, self.mlp_name)(hidden), residual


class DecoderModel(Layer):
    def __init__(
        self, config: ModelConfig, layers: list[DecoderLayer], parallel: Parallel, dtype: torch.dtype
    ):
        super().__init__()
        self.embed_tokens = VocabParallelEmbedding(
            config.vocab_size, config.hidden_size, parallel, dtype=dtype
        )
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype=dtype)

    def forward(
        self, input_ids: torch.Tensor, positions: torch.Tensor, meta: AttentionMetadata
    ) -> torch.Tensor:
        hidden, residual = self.embed_tokens(input_ids), None
        for layer in self.layers:
            hidden, residual = layer(positions, hidden, residual, meta)
        hidden, _ = self.norm(hidden, residual)
        return hidden


# Builds (attention, mlp) for layer i: fn(config, i, parallel, dtype, cache) -> (nn.Module, nn.Module)
LayerFactory = Callable[[ModelConfig, int, Parallel, torch.dtype, CacheConfig], tuple[nn.Module, nn.Module]]


class CausalLM(Layer):
    """forward(input_ids [T], positions [T], meta) -> hidden [T, H];
    compute_logits(hidden [N, H]) -> [N, vocab].
    `ignored` lists checkpoint-name prefixes the model does not read (e.g. multi-token-prediction layers)."""

    ignored: tuple[str, ...] = ()
    mlp_name = "mlp"

    def __init__(
        self,
        config: ModelConfig,
        make_layer: LayerFactory,
        parallel: Parallel,
        dtype: torch.dtype,
        cache: CacheConfig,
    ):
        super().__init__()
        self.config, self.parallel, self.dtype = config, parallel, dtype
        layers = [
            DecoderLayer(*make_layer(config, i, parallel, dtype, cache), config, dtype, self.mlp_name)
            for i in range(config.num_hidden_layers)
        ]
        self.model = DecoderModel(config, layers, parallel, dtype)
        tied = self.model.embed_tokens if config.get("tie_word_embeddings", False) else None
        self.lm_head = ParallelLMHead(
            config.vocab_size, config.hidden_size, parallel, dtype=dtype, tied_to=tied
        )

    def forward(
        self, input_ids: torch.Tensor, positions: torch.Tensor, meta: AttentionMetadata
    ) -> torch.Tensor:
        return self.model(input_ids, positions, meta)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)
