"""moe.experts through torch._grouped_mm (bf16): the torch-only expert path for sm_90 and the sm_10x family.

Token-expert pairs are sorted by expert (argsort on the device, no host sync); each GEMM is one grouped
call over the experts' row ranges (offs = cumulative counts), the gate/up product is activated and rounded to
bf16 between them, and the weighted rows are summed back into their tokens. Weights are read in the
contract's layout: mat_b is w13/w2 transposed as views ([E, H, 2I] and [E, I, H], column-major per expert).
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F

from anyaccel.ops.moe import MoESpec


def experts(spec: MoESpec, platform):
    grouped_mm = importlib.import_module("anyaccel_cuda.torch_ops").grouped_mm
    act = F.silu if spec.activation == "silu" else F.gelu
    num_experts = spec.num_experts

    def grouped_experts(
        hidden,
        w13,
        w2,
        topk_weights,
        topk_ids,
        activation="silu",
        expert_map=None,
        w13_scale=None,
        w2_scale=None,
        w13_zeros=None,
        w2_zeros=None,
        w13_bias=None,
        w2_bias=None,
        w13_global_scale=None,
        w2_global_scale=None,
    ):
        tokens, k = topk_ids.shape
        flat = topk_ids.reshape(-1).long()
        order = flat.argsort(stable=True)
        offs = torch.bincount(flat, minlength=num_experts).cumsum(0).to(torch.int32)
        rows = order // k
        gate_up = grouped_mm(hidden[rows], w13.transpose(1, 2), offs)
        inter = gate_up.shape[1] // 2
        mid = (act(gate_up[:, :inter].float()) * gate_up[:, inter:].float()).to(hidden.dtype)
        down = grouped_mm(mid, w2.transpose(1, 2), offs)
        weighted = down.float() * topk_weights.reshape(-1)[order].unsqueeze(1)
        out = torch.zeros(tokens, hidden.shape[1], dtype=torch.float32, device=hidden.device)
        out.index_add_(0, rows, weighted)
        return out.to(hidden.dtype)

    return grouped_experts
