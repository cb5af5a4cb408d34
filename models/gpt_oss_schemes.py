"""The two weight formats of GPT-OSS's experts as MoE schemes: dense, and MXFP4 kept packed; both with the
per-expert biases of gate/up and down, applied by moe.experts (has_bias) with the clamped SwiGLU.

Parameters (E experts on this rank, hidden H, intermediate I on this rank), filled by gpt_oss_experts.py:
  dense: w13_weight [E, 2I, H] ([gate; up]), w2_weight [E, H, I], in the model dtype
  mxfp4: w13_blocks uint8 [E, 2I, H/2], w13_scales uint8 e8m0 [E, 2I, H/32], w2_blocks uint8 [E, H, I/2],
         w2_scales uint8 [E, H, I/32] (anyaccel.ops.microscaling's mxfp4: moe.experts quant "mxfp4")
  both:  w13_bias [E, 2I], w2_bias [E, H] in the model dtype
"""

from __future__ import annotations

import torch
from torch.nn import Module

from anyaccel.ops.moe import MoESpec
from anyaccel.schemes import MoEScheme, ParamLayout
from anyaccel.schemes.base import add_param

EXPERT = ParamLayout(1, 2)  # [E, N, K]: dim 0 the expert (the GPT-OSS loader reads these itself)
EXPERT_BIAS = ParamLayout(1, None)
MXFP4_BLOCK = 32


class GptOssMoE(MoEScheme):
    """Dense experts with biases (quant None), or MXFP4 ones (quant "mxfp4")."""

    def __init__(self, quant: str | None) -> None:
        super().__init__({"quant_method": quant or "none"})
        self.quant = quant

    def create_weights(
        self,
        layer: Module,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        top_k: int,
        params_dtype: torch.dtype,
        activation: str = "silu",
        expert_parallel: bool = False,
    ) -> None:
        e, h, i = num_experts, hidden_size, intermediate_size
        if self.quant == "mxfp4":
            if h % MXFP4_BLOCK or i % MXFP4_BLOCK:
                raise ValueError(
                    f"GPT-OSS MXFP4 experts: hidden size {h} and intermediate size {i} (per tensor-parallel "
                    f"shard) must be multiples of the {MXFP4_BLOCK}-element block"
                )
            for name, n, k in (("w13", 2 * i, h), ("w2", h, i)):
                add_param(layer, f"{name}_blocks", torch.empty(e, n, k // 2, dtype=torch.uint8), EXPERT)
                scales = torch.empty(e, n, k // MXFP4_BLOCK, dtype=torch.uint8)
                add_param(layer, f"{name}_scales", scales, EXPERT)
        else:
            add_param(layer, "w13_weight", torch.empty(e, 2 * i, h, dtype=params_dtype), EXPERT)
            add_param(layer, "w2_weight", torch.empty(e, h, i, dtype=params_dtype), EXPERT)
        add_param(layer, "w13_bias", torch.empty(e, 2 * i, dtype=params_dtype), EXPERT_BIAS)
        add_param(layer, "w2_bias", torch.empty(e, h, dtype=params_dtype), EXPERT_BIAS)
        self.spec = MoESpec(
            params_dtype,
            e,
            top_k,
            h,
            i,
            activation,
            self.quant or "none",
            expert_parallel=expert_parallel,
            has_bias=True,
        )

    def weight_params(self) -> dict[str, str]:
        biases = {"w13_bias": "w13_bias", "w2_bias": "w2_bias"}
        if self.quant == "mxfp4":
            packed = {
                "w13": "w13_blocks",
                "w2": "w2_blocks",
                "w13_scale": "w13_scales",
                "w2_scale": "w2_scales",
            }
            return packed | biases
        return super().weight_params() | biases
