"""Values derived once per forward in the plan phase, and per-layer constants converted once: anyaccel's
`Planned` and `Converted` (anyaccel.planning), and the kept-slot indices torch_npu's KV writes need."""

from __future__ import annotations

import torch

from anyaccel.planning import Converted, Planned

__all__ = ["Converted", "Planned", "kept_slots"]


def kept_slots(slot_mapping: torch.Tensor) -> torch.Tensor | None:
    """Indices of the tokens with a slot (not -1), or None when every token has one. torch_npu's KV writes
    take only valid slots."""
    keep = (slot_mapping >= 0).nonzero().flatten()
    return None if keep.numel() == slot_mapping.numel() else keep
