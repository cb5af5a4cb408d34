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


# A tiny DeepSeek-V3 whose fp8 block version also shards at TP=2: every merged part and every tensor-parallel
# shard of a quantized linear or expert is a multiple of 128 features (no scale tile spans two of them).
FP8_DEEPSEEK_V3: dict[str, Any] = dict(
    hidden_size=256,
    intermediate_size=256,
    moe_intermediate_size=256,
    num_attention_heads=8,
    num_key_value_heads=8,
    q_lora_rank=128,
    kv_lora_rank=128,
    qk_nope_head_dim=32,
    qk_rope_head_dim=32,
    v_head_dim=32,
)
FP8_MAX = 448.0  # float8_e4m3fn
FP8_BLOCK = 128
FP8_BLOCK_CONFIG: dict[str, Any] = {
    "quant_method": "fp8",
    "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    "activation_scheme": "dynamic",
}


def quantize_fp8_block(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [N, K] -> (float8_e4m3fn [N, K], weight_scale_inv float32 [ceil(N/128), ceil(K/128)]), one
    scale per 128x128 tile (edge tiles partial), real = q * scale_inv: DeepSeek-V3's checkpoint format."""
    n, k = weight.shape
    rows, cols = -(-n // FP8_BLOCK), -(-k // FP8_BLOCK)
    padded = torch.zeros(rows * FP8_BLOCK, cols * FP8_BLOCK)
    padded[:n, :k] = weight.float()
    tiles = padded.view(rows, FP8_BLOCK, cols, FP8_BLOCK)
    scale = tiles.abs().amax(dim=(1, 3)).clamp_min(1e-12) / FP8_MAX
    q = (tiles / scale[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q.view_as(padded)[:n, :k].contiguous(), scale


def dequantize_fp8_block(q: torch.Tensor, scale_inv: torch.Tensor) -> torch.Tensor:
    """Inverse of quantize_fp8_block: float32 [N, K]."""
    n, k = q.shape
    full = scale_inv.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)
    return q.float() * full[:n, :k]


def _is_quantized_linear(name: str, t: torch.Tensor) -> bool:
    """Linear weights that fp8 checkpoints quantize: not embeddings, LM head, norms or MoE routers."""
    return t.dim() == 2 and not name.endswith(("embed_tokens.weight", "lm_head.weight", ".gate.weight"))


def _spread_tiles(weight: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """weight with each 128x128 tile multiplied by a random power of two in [1/2, 2]: the tiles' scales then
    differ by up to 4x, so a scale applied to the wrong tile shows (powers of two quantize exactly alike)."""
    n, k = weight.shape
    rows, cols = -(-n // FP8_BLOCK), -(-k // FP8_BLOCK)
    factors = 2.0 ** torch.randint(-1, 2, (rows, cols), generator=gen).float()
    full = factors.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)[:n, :k]
    return (weight.float() * full).to(weight.dtype)


def fp8_block_checkpoint(
    model_dir: Path | str, fp8_dir: Path | str, dequantized_dir: Path | str, *, seed: int = 0
) -> Path:
    """From a checkpoint in `model_dir`, write its DeepSeek-V3 style fp8 block version to `fp8_dir` (every
    linear weight, its 128x128 tiles first spread apart by `_spread_tiles`, as e4m3fn + `weight_scale_inv`;
    quantization_config FP8_BLOCK_CONFIG) and the same weights dequantized, unquantized in the checkpoint's
    dtype, to `dequantized_dir`: two checkpoints of one model, to check the fp8 path against the dense one."""
    import json

    from safetensors.torch import load_file, save_file

    model_dir, fp8_dir, dequantized_dir = Path(model_dir), Path(fp8_dir), Path(dequantized_dir)
    config = json.loads((model_dir / "config.json").read_text())
    tensors = load_file(model_dir / "model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    quantized, dense = {}, {}
    for name, t in sorted(tensors.items()):
        if not _is_quantized_linear(name, t):
            quantized[name] = dense[name] = t
            continue
        q, scale = quantize_fp8_block(_spread_tiles(t, gen))
        quantized[name], quantized[name + "_scale_inv"] = q, scale
        dense[name] = dequantize_fp8_block(q, scale).to(t.dtype)
    for path, weights, extra in (
        (fp8_dir, quantized, {"quantization_config": FP8_BLOCK_CONFIG}),
        (dequantized_dir, dense, {}),
    ):
        path.mkdir(parents=True, exist_ok=True)
        save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
        (path / "config.json").write_text(json.dumps({**config, **extra}, indent=2))
    return fp8_dir
