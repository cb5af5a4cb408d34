"""Tiny random checkpoints of every supported architecture, saved in Hugging Face format by transformers:
for parity tests here and for plugin authors who want to run their kernels inside a real model.

Weights are re-drawn with a larger spread than transformers' initialisation so that logits, routing and
attention patterns are far from uniform (a comparison of near-constant logits would prove little).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

COMMON: dict[str, Any] = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    bos_token_id=None,
    eos_token_id=None,
    pad_token_id=None,
)
MOE: dict[str, Any] = dict(num_experts_per_tok=2, moe_intermediate_size=32)

# architecture -> (transformers config class name, config overrides)
TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "LlamaForCausalLM": ("LlamaConfig", {}),
    "MistralForCausalLM": ("MistralConfig", {"head_dim": 16, "sliding_window": 8}),
    "Qwen2ForCausalLM": ("Qwen2Config", {}),
    "Qwen3ForCausalLM": ("Qwen3Config", {"head_dim": 16}),
    "Qwen3MoeForCausalLM": (
        "Qwen3MoeConfig",
        {"head_dim": 16, "num_experts": 8, "norm_topk_prob": True, **MOE},
    ),
    "MixtralForCausalLM": ("MixtralConfig", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    "DeepseekV3ForCausalLM": (
        "DeepseekV3Config",
        {
            "num_key_value_heads": 4,
            "n_routed_experts": 8,
            "n_shared_experts": 1,
            "n_group": 4,
            "topk_group": 2,
            "first_k_dense_replace": 1,
            "kv_lora_rank": 32,
            "q_lora_rank": 48,
            "qk_rope_head_dim": 8,
            "qk_nope_head_dim": 16,
            "v_head_dim": 16,
            "routed_scaling_factor": 2.5,
            **MOE,
        },
    ),
}


def _redraw(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(model.state_dict().items()):
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=gen)
            if name.endswith("norm.weight") or "layernorm" in name:
                t.copy_(1 + 0.1 * noise)
            elif "e_score_correction_bias" in name:
                t.copy_(0.05 * noise)
            else:
                t.copy_(noise / max(1, t.shape[-1]) ** 0.5 * (0.2 if t.dim() == 1 else 1.0))


def tiny_checkpoint(
    architecture: str,
    path: Path | str,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
    **overrides: Any,
) -> Path:
    """Save a tiny random `architecture` checkpoint in `path`; keyword overrides go to its config."""
    import transformers

    config_name, specific = TINY[architecture]
    config = getattr(transformers, config_name)(**{**COMMON, **specific, **overrides})
    config.architectures = [architecture]
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _redraw(model, seed)
    model = model.to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(str(path), **kwargs)
    return Path(path)
