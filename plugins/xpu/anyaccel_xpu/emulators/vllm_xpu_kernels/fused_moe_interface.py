"""Emulated vllm_xpu_kernels.fused_moe_interface.XpuFusedMoe for 16-bit weights: the constructor's checks
and apply(output, hidden_states, topk_weights, topk_ids, expert_map=None).

w13 [E, K=H, N=2I] and w2 [E, I, H], contiguous (4-bit layouts are not emulated); per (token, choice) the
grouped GEMMs compute x @ w13[e] (+ bias), the _C activation halves it (gate first), @ w2[e] (+ bias), each
rounded to the hidden dtype as the kernels write their outputs, and moe_gather sums the choices weighted in
float32. An expert_map sends global ids to local experts; -1 contributes nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import arch
from ..arch import check

ACTIVATIONS = {"silu": F.silu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}


class XpuFusedMoe:
    def __init__(
        self,
        w13,
        w13_scales,
        w13_bias,
        w2,
        w2_scales,
        w2_bias,
        n_experts_per_token,
        activation,
        num_experts,
        ep_rank=0,
        ep_size=1,
        expert_map=None,
        gemm1_clamp_limit=None,
        activation_situ_beta=None,
        activation_situ_linear_beta=None,
    ):
        assert w13.is_contiguous() and w2.is_contiguous()
        if w13.dtype not in (torch.float16, torch.bfloat16) or w13_scales is not None:
            raise NotImplementedError("quantized XpuFusedMoe weights are not emulated")
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unsupported FusedMoe activation: {activation}.")
        if gemm1_clamp_limit is not None or ep_size != 1:
            raise NotImplementedError("gemm1_clamp_limit and ep_size > 1 are not emulated")
        arch.require_device_code("XpuFusedMoe")
        arch.require_xe2_xe3()
        self.inter_size = w13.shape[-1] // 2
        check(
            w13.shape[0] == num_experts and w2.shape[0] == num_experts,
            "weights must hold num_experts experts",
        )
        check(
            w2.shape[1] == self.inter_size and w2.shape[2] == w13.shape[1],
            "w2 must be [E, I, H] for w13 [E, H, 2I]",
        )
        self.w13, self.w2, self.w13_bias, self.w2_bias = w13, w2, w13_bias, w2_bias
        self.n_experts_per_token, self.activation, self.num_experts = (
            n_experts_per_token,
            activation,
            num_experts,
        )
        self.expert_map = expert_map

    def apply(self, output, hidden_states, topk_weights, topk_ids, expert_map=None, a1q_scale=None):
        check(a1q_scale is None, "a1q_scale (fp8 activations) is not emulated")
        check(output.shape == hidden_states.shape, "output shape must be the same as hidden_states shape")
        check(topk_ids.shape[1] == self.n_experts_per_token, "topk_ids must have n_experts_per_token columns")
        check(hidden_states.dtype == self.w13.dtype, "hidden_states and weights must share a dtype")
        emap = expert_map if expert_map is not None else self.expert_map
        dtype = hidden_states.dtype
        x = hidden_states.float()
        acc = torch.zeros(x.shape, dtype=torch.float32)
        act = ACTIVATIONS[self.activation]
        ids = topk_ids.long()
        local = emap.long()[ids] if emap is not None else ids
        for e in local.unique().tolist():
            if e < 0:
                continue
            check(e < self.num_experts, f"expert {e} out of range")
            rows, slots = (local == e).nonzero(as_tuple=True)
            h = x[rows] @ self.w13[e].float()
            if self.w13_bias is not None:
                h = h + self.w13_bias[e].float()
            h = h.to(dtype).float()
            g = (act(h[:, : self.inter_size]) * h[:, self.inter_size :]).to(dtype).float()
            y = g @ self.w2[e].float()
            if self.w2_bias is not None:
                y = y + self.w2_bias[e].float()
            y = y.to(dtype).float()
            acc.index_add_(0, rows, y * topk_weights[rows, slots].float().unsqueeze(1))
        output.copy_(acc.to(dtype))
