"""Torch-facing moe.experts kernel (contract in anyaccel.ops.moe). Expert weights, scales, zeros and the
expert map cross into MLX once per tensor (convert.resident)."""

from __future__ import annotations

import torch

from ..convert import maybe_resident, resident, to_mx, to_torch
from ..ops import moe


def experts(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    activation: str = "silu",
    expert_map: torch.Tensor | None = None,
    w13_scale: torch.Tensor | None = None,
    w2_scale: torch.Tensor | None = None,
    w13_zeros: torch.Tensor | None = None,
    w2_zeros: torch.Tensor | None = None,
    w13_bias: torch.Tensor | None = None,
    w2_bias: torch.Tensor | None = None,
    w13_global_scale: torch.Tensor | None = None,
    w2_global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    out = moe.experts(
        to_mx(hidden),
        resident(w13),
        resident(w2),
        to_mx(topk_weights),
        to_mx(topk_ids),
        activation,
        maybe_resident(expert_map),
        maybe_resident(w13_scale),
        maybe_resident(w2_scale),
        maybe_resident(w13_zeros),
        maybe_resident(w2_zeros),
        maybe_resident(w13_bias),
        maybe_resident(w2_bias),
        maybe_resident(w13_global_scale),
        maybe_resident(w2_global_scale),
    )
    return to_torch(out, hidden.device)
