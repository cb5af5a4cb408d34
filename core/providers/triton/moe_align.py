"""The moe_align_block_size step of the fused MoE: (token, choice) slots sorted by local expert, each
expert's run padded to a multiple of BLOCK_M, so every BLOCK_M rows of the sorted list belong to one expert
and the grouped GEMM reads one expert's weights per program.

Written with torch operations that run on any device without a host synchronisation: the padded length is
the static bound slots + E * (BLOCK_M - 1), and blocks past the real end are marked with expert -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Alignment:
    """sorted_slots: [capacity] int64 slot index t * top_k + j, or `num_slots` for padding;
    block_expert: [capacity / BLOCK_M] int32 local expert of each block, -1 for blocks past the end."""

    sorted_slots: torch.Tensor
    block_expert: torch.Tensor
    num_slots: int


def align(
    topk_ids: torch.Tensor, expert_map: torch.Tensor | None, num_experts: int, block_m: int
) -> Alignment:
    """Slots of topk_ids [T, k] (global ids) grouped by local expert; remote experts (map -1) are dropped."""
    flat = topk_ids.reshape(-1).long()
    num_slots = flat.numel()
    local = expert_map[flat].long() if expert_map is not None else flat
    key = torch.where(local >= 0, local, num_experts)  # remote slots sort last, into bucket E
    counts = torch.bincount(key, minlength=num_experts + 1)
    padded = (counts[:num_experts] + block_m - 1) // block_m * block_m
    padded_end = padded.cumsum(0)
    dest_start = torch.cat((padded_end - padded, padded_end[-1:]))  # bucket E writes past the capacity
    order = torch.argsort(key, stable=True)
    sorted_key = key[order]
    first = counts.cumsum(0) - counts
    dest = dest_start[sorted_key] + torch.arange(num_slots, device=flat.device) - first[sorted_key]
    capacity = num_slots + num_experts * (block_m - 1)
    capacity = (capacity + block_m - 1) // block_m * block_m
    dest = torch.where(sorted_key < num_experts, dest, capacity)  # one trash entry for remote slots
    sorted_slots = torch.full((capacity + 1,), num_slots, dtype=torch.int64, device=flat.device)
    sorted_slots.scatter_(0, dest, order)
    block_start = torch.arange(0, capacity, block_m, device=flat.device)
    expert = torch.searchsorted(padded_end, block_start, right=True)
    block_expert = torch.where(block_start < padded_end[-1], expert, -1).to(torch.int32)
    return Alignment(sorted_slots[:capacity], block_expert, num_slots)
