"""moe.experts for 128x128 block-fp8 experts through MATE's contiguous grouped fp8 GEMM (MP31), the layout
DeepGEMM's m_grouped_fp8_gemm_nt_contiguous reads:

1. the (token, expert) pairs (global ids mapped to local ones through expert_map; remote ones dropped) are
   sorted by expert, and each expert's rows placed in a segment padded to a multiple of 128 rows;
   m_indices names the expert of each row, -1 for padding rows;
2. the gathered hidden rows are quantized per token and 128-column group to e4m3 (float32 scales);
3. grouped GEMM with w13 [E, 2I, H] and its [E, 2I/128, H/128] scales -> [M, 2I] bf16; act(gate) * up;
   quantized again; grouped GEMM with w2 [E, H, I] -> [M, H];
4. each row weighted by its routing weight and summed into its token (float32), rounded once.

Building the layout reads the per-expert counts on the host once per call (as vLLM's DeepGEMM MoE does).
"""

from __future__ import annotations

import torch
from mate.deep_gemm import m_grouped_fp8_gemm_nt_contiguous

from anyaccel.providers.reference.quant import quantize_fp8

from .. import gates

FP8 = torch.float8_e4m3fn
ALIGN = gates.GROUPED_ALIGNMENT


def prepare(spec, weights: dict) -> dict:
    """Weights contiguous, scales float32, once at load; MATE reads e4m3 weights only."""
    for name in ("w13", "w2"):
        if weights[name].dtype != FP8:
            raise ValueError(
                f"moe.experts (musa.mate_grouped_fp8_experts): {name} is {weights[name].dtype}; "
                f"MATE's grouped GEMM reads {FP8}"
            )
    ready = {name: weights[name].contiguous() for name in ("w13", "w2")}
    ready |= {name: weights[name].float().contiguous() for name in ("w13_scale", "w2_scale")}
    return weights | ready


def _layout(ids: torch.Tensor, experts: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids [P] local expert of each kept pair -> (order [P], row of each sorted pair [P], m_indices [M])."""
    order = torch.argsort(ids, stable=True)
    sorted_ids = ids[order]
    counts = torch.bincount(sorted_ids, minlength=experts)
    padded = (counts + ALIGN - 1) // ALIGN * ALIGN
    starts = torch.cumsum(padded, 0) - padded
    first = torch.cumsum(counts, 0) - counts
    rows = starts[sorted_ids] + torch.arange(ids.numel(), device=ids.device) - first[sorted_ids]
    m_indices = torch.full((int(padded.sum()),), -1, dtype=torch.int32, device=ids.device)
    m_indices[rows] = sorted_ids.to(torch.int32)
    return order, rows, m_indices


def _grouped(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, m_indices: torch.Tensor) -> torch.Tensor:
    qx, sx = quantize_fp8(x, FP8, "block")
    d = torch.zeros(x.shape[0], w.shape[1], dtype=torch.bfloat16, device=x.device)
    m_grouped_fp8_gemm_nt_contiguous((qx, sx.contiguous()), (w, scale), d, m_indices, alignment_m=ALIGN)
    return d


def experts(
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
    ids = topk_ids.long().flatten()
    if expert_map is not None:
        ids = expert_map.long()[ids]
    token_of = torch.arange(tokens, device=hidden.device).repeat_interleave(k)
    weight_of = topk_weights.flatten()
    keep = ids >= 0
    ids, token_of, weight_of = ids[keep], token_of[keep], weight_of[keep]
    out = torch.zeros(tokens, hidden.shape[1], dtype=torch.float32, device=hidden.device)
    if ids.numel() == 0:
        return out.to(hidden.dtype)
    order, rows, m_indices = _layout(ids, w13.shape[0])
    token_of, weight_of = token_of[order], weight_of[order]
    x = torch.zeros(m_indices.numel(), hidden.shape[1], dtype=hidden.dtype, device=hidden.device)
    x[rows] = hidden[token_of]
    gate, up = _grouped(x, w13, w13_scale, m_indices).float().chunk(2, dim=-1)
    act = torch.nn.functional.silu(gate) if activation == "silu" else torch.nn.functional.gelu(gate)
    y = _grouped((act * up).to(torch.bfloat16), w2, w2_scale, m_indices)
    out.index_add_(0, token_of, y[rows].float() * weight_of.unsqueeze(1))
    return out.to(hidden.dtype)
