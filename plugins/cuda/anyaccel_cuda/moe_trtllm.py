"""moe.experts with fp8 block weights (DeepSeek-V3's 128x128 tiles) through FlashInfer's pre-routed trtllm-gen
MoE, trtllm_fp8_block_scale_routed_moe (sm_100 family).

Routing comes from moe.topk as the (ids int32, weights float32) pair. Under expert parallelism the global ids
are mapped to this rank's local ones through expert_map on the device (any placement): a pair whose expert
lives elsewhere keeps local id 0 with weight 0, so it adds nothing (and costs one row of compute).
The activations are quantized here per 1x128 block to e4m3fn, with the scales transposed to the kernel's
[H/128, T]; the contract allows that on-the-fly quantization. Weights stay in the unshuffled K-major layout
(weight_layout 0); `prepare` puts gemm1's halves in the kernel's [up; gate] order, rows and scale tiles
alike, once at load time (so I must be a multiple of 128: the halves are then whole tiles).
"""

from __future__ import annotations

import torch
from flashinfer.fused_moe import trtllm_fp8_block_scale_routed_moe

from anyaccel.ops.moe import MoESpec

FP8_MAX = 448.0


def prepare(spec: MoESpec, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    w13, scale = weights["w13"], weights["w13_scale"]
    assert w13 is not None and scale is not None
    rows, tiles = w13.shape[1] // 2, scale.shape[1] // 2
    return {
        **weights,
        "w13": torch.cat([w13[:, rows:], w13[:, :rows]], dim=1).contiguous(),
        "w13_scale": torch.cat([scale[:, tiles:], scale[:, :tiles]], dim=1).contiguous(),
    }


def _quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [T, H] -> (e4m3fn [T, H], float32 scales [H/128, T]) per 1x128 block."""
    blocks = x.float().view(x.shape[0], -1, 128)
    scale = blocks.abs().amax(-1).clamp(min=1e-12) / FP8_MAX
    q = (blocks / scale.unsqueeze(-1)).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q.view_as(x), scale.T.contiguous()


def experts(spec: MoESpec, platform):
    num_experts, top_k, inter = spec.num_experts, spec.top_k, spec.intermediate_size

    def trtllm_fp8_experts(
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
        if expert_map is not None:
            local = expert_map[topk_ids.long()]
            topk_weights = torch.where(local >= 0, topk_weights, torch.zeros_like(topk_weights))
            topk_ids = local.clamp(min=0).to(torch.int32)
        q, scale = _quantize(hidden)
        args = (q, scale, w13, w13_scale, w2, w2_scale, num_experts, top_k, None, None, inter, 0, num_experts)
        out = trtllm_fp8_block_scale_routed_moe((topk_ids, topk_weights), None, *args, None)
        return out.to(spec.dtype)

    return trtllm_fp8_experts
