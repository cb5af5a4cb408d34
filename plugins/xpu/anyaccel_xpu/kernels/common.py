"""Argument mappings shared by the attention kernels of every stack; imports no vendor module.

Our sliding window W counts W keys including the query's own; FlashAttention-style window_size (left,
right) keeps keys p - left <= j <= p + right, so (W - 1, 0) for causal attention and (W - 1, -1) for a
non-causal window ((-1, -1): none).
"""

from __future__ import annotations

import torch


def window(sliding_window: int, causal: bool) -> tuple[int, int]:
    if sliding_window <= 0:
        return (-1, -1)
    return (sliding_window - 1, 0 if causal else -1)


def one_query_each(seq_lens: torch.Tensor) -> torch.Tensor:
    """Cumulative query offsets 0, 1, ..., B (int32) of a decode batch: one query per sequence."""
    return torch.arange(seq_lens.numel() + 1, dtype=torch.int32, device=seq_lens.device)
