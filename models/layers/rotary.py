"""Rotary position embedding: the cos/sin cache for each scaling type, applied with rope.apply.

Scaling follows config.json's `rope_parameters` (transformers 5) or the older `rope_theta` + `rope_scaling`:
default, linear, llama3 (Llama 3.1 frequency smoothing) and yarn (NTK-by-parts with an attention factor
multiplied into cos and sin). Partial rotary (`partial_rotary_factor` < 1) rotates the first channels only.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from anyaccel.ops.rope import RopeSpec

from ..config import ModelConfig
from .module import Layer
from .ops import bind


def rope_parameters(config: ModelConfig) -> dict[str, Any]:
    """{"rope_type", "rope_theta", ...} from either config.json convention."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    params["rope_type"] = params.get("rope_type") or params.get("type") or "default"
    if config.get("partial_rotary_factor") is not None:
        params.setdefault("partial_rotary_factor", config.partial_rotary_factor)
    return params


def _llama3(inv_freq: torch.Tensor, p: dict[str, Any]) -> torch.Tensor:
    factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
    old_len = p["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
    return torch.where(medium, smoothed, scaled)


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(dim: int, base: float, p: dict[str, Any], max_positions: int) -> tuple[torch.Tensor, float]:
    old_len = p["original_max_position_embeddings"]
    factor = p.get("factor") or max_positions / old_len
    attention = p.get("attention_factor")
    if attention is None:
        mscale, mscale_all = p.get("mscale"), p.get("mscale_all_dim")
        if mscale and mscale_all:
            attention = _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all)
        else:
            attention = _yarn_mscale(factor)

    def correction_dim(rotations: float) -> float:
        return dim * math.log(old_len / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(p.get("beta_fast") or 32), correction_dim(p.get("beta_slow") or 1)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / ((high - low) or 0.001)).clamp(0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    extrapolate = 1 - ramp
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolate) + (1.0 / pos_freqs) * extrapolate
    return inv_freq, float(attention)


def inverse_frequencies(dim: int, p: dict[str, Any], max_positions: int) -> tuple[torch.Tensor, float]:
    """(inv_freq [dim / 2] float32, attention factor multiplied into cos and sin) for one rope_type."""
    kind, base = p["rope_type"], p["rope_theta"]
    if kind == "yarn":
        return _yarn(dim, base, p, max_positions)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / p["factor"], 1.0
    if kind == "llama3":
        return _llama3(inv_freq, p), 1.0
    raise ValueError(f"rope_type {kind!r} is not supported; supported: default, linear, llama3, yarn")


def cos_sin_cache(
    rotary_dim: int, p: dict[str, Any], max_positions: int, rows: int | None = None
) -> torch.Tensor:
    """[rows, rotary_dim] float32 (rows: max_positions unless given): cos in the first rotary_dim / 2
    columns, sin in the rest. max_positions is the model's (YaRN derives its factor from it)."""
    inv_freq, attention = inverse_frequencies(rotary_dim, p, max_positions)
    freqs = torch.outer(torch.arange(rows or max_positions, dtype=torch.float32), inv_freq)
    return torch.cat((freqs.cos() * attention, freqs.sin() * attention), dim=-1)


class RotaryEmbedding(Layer):
    """Rotates q [T, Hq, D] and k [T, Hkv, D] by position; returns new tensors.
    is_neox: rotate halves (Llama, Qwen); False rotates interleaved pairs (DeepSeek's rope_interleave)."""

    def __init__(
        self,
        config: ModelConfig,
        head_dim: int,
        num_heads: int,
        num_kv_heads: int,
        *,
        dtype: torch.dtype,
        is_neox: bool = True,
        rotary_dim: int | None = None,
    ):
        super().__init__()
        p = rope_parameters(config)
        rotary_dim = rotary_dim or int(head_dim * p.get("partial_rotary_factor", 1.0))
        self.is_neox = is_neox
        # as many positions as the engine holds (config.max_model_len), not the model's maximum: a config
        # may claim millions of positions
        rows = config.max_model_len or config.max_position_embeddings
        cache = cos_sin_cache(rotary_dim, p, config.max_position_embeddings, rows)
        self.register_buffer("cos_sin_cache", cache, persistent=False)
        spec = RopeSpec(dtype, head_dim, rotary_dim, is_neox, num_heads, num_kv_heads)
        self.rope = bind(self, "rope.apply", spec)

    def forward(
        self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rope(q, k, positions, self.cos_sin_cache, self.is_neox)
