"""Torch-facing rope kernel (contract in anyaccel.ops.rope)."""

from __future__ import annotations

import torch

from ..convert import resident, to_mx, to_torch
from ..ops import rope


def apply(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    q_out, k_out = rope.apply(to_mx(q), to_mx(k), to_mx(positions), resident(cos_sin_cache), is_neox)
    return to_torch(q_out, q.device), to_torch(k_out, k.device)
