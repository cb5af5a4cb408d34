"""FP8 weights (quant_method "fp8"): per-tensor scales, or DeepSeek-V3's 128x128 blocks.

quantization_config: {"quant_method": "fp8", "activation_scheme": "dynamic" | "static",
                      "weight_block_size": [128, 128] or absent}
Checkpoints hold float8_e4m3fn weights [N, K] with float32 multipliers: `weight_scale` (one per merged shard)
or `weight_scale_inv` [ceil(N/128), ceil(K/128)] for blocks, and `input_scale` (one per merged shard) for
static activations. On platforms whose fp8 dtype is e4m3fnuz the weights are converted once after loading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module

from anyaccel.ops.moe import MoESpec
from anyaccel.ops.quant import BLOCK, GemmSpec, QuantSpec
from anyaccel.platforms.base import Platform

from .base import (
    LinearScheme,
    MoEScheme,
    ParamLayout,
    Scheme,
    add_param,
    flat,
    register,
    replace_param,
    tensor,
)

CHECKPOINT_FP8 = torch.float8_e4m3fn
SHARD_SCALE = ParamLayout(output_dim=None, input_dim=None, per_shard=True)


def to_fnuz(weight: Tensor, *scales: Tensor) -> tuple[Tensor, ...]:
    """e4m3fn bits reinterpreted as e4m3fnuz, whose exponent bias is one larger (the same bits mean half the
    value), so every scale doubles. The one e4m3fn pattern fnuz reads as NaN, 0x80 (-0), becomes +0."""
    bits = weight.view(torch.int8).clone()
    bits[bits == -128] = 0
    return (bits.view(torch.float8_e4m3fnuz), *(s * 2.0 for s in scales))


class _Fp8Config(Scheme):
    """Parsing and the load-time helpers shared by the linear and MoE fp8 schemes."""

    def __init__(self, config: Mapping[str, Any], platform: Platform | None = None) -> None:
        super().__init__(config, platform)
        who = f"fp8 scheme ({type(self).__name__})"
        block = config.get("weight_block_size")
        if block is not None and list(block) != [BLOCK, BLOCK]:
            raise ValueError(f"{who}: weight_block_size must be [128, 128] or absent, got {block}")
        scheme = config.get("activation_scheme", "dynamic")
        if scheme not in ("dynamic", "static"):
            raise ValueError(f"{who}: activation_scheme must be 'dynamic' or 'static', got {scheme!r}")
        if block is not None and scheme == "static":
            raise ValueError(f"{who}: block-quantized checkpoints use dynamic activation scales")
        self.block = block is not None
        self.static = scheme == "static"
        self.fp8 = self.fp8_dtype()
        self.fp8_name = str(self.fp8).removeprefix("torch.")

    def to_platform_fp8(self, weight: Tensor, *scales: Tensor) -> tuple[Tensor, ...]:
        if self.fp8 == torch.float8_e4m3fnuz and weight.dtype == torch.float8_e4m3fn:
            return to_fnuz(weight, *scales)
        return (weight, *scales)

    def requantize(self, weight: Tensor, shard_scales: Tensor, sizes: Sequence[int]) -> tuple[Tensor, Tensor]:
        """One scale for merged shards quantized with their own: the largest, the others requantized to it
        with quant.quantize_fp8 (weight [N, K], shard_scales [len(sizes)]) -> (weight, scale [1])."""
        top = shard_scales.max().reshape(1).float()
        real = torch.cat(
            [
                part.float() * s
                for part, s in zip(weight.split(list(sizes)), shard_scales.float(), strict=True)
            ]
        )
        quantize = self.bind("quant.quantize_fp8", QuantSpec(torch.float32, self.fp8_name, "tensor"))
        return quantize(real, self.fp8, "tensor", top)[0], top


class Fp8Linear(_Fp8Config, LinearScheme):
    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        n, k = sum(output_sizes), input_size
        self.sizes, self.dtype, self.k = list(output_sizes), params_dtype, k
        add_param(layer, "weight", torch.empty(n, k, dtype=CHECKPOINT_FP8), ParamLayout())
        if self.block:
            if len(output_sizes) > 1 and any(s % BLOCK for s in output_sizes):
                raise ValueError(
                    f"fp8 block scheme: merged shard sizes {list(output_sizes)} must be"
                    f" multiples of {BLOCK} so no 128x128 scale tile spans two shards"
                )
            add_param(
                layer,
                "weight_scale_inv",
                torch.empty(-(-n // BLOCK), -(-k // BLOCK)),
                ParamLayout(output_div=BLOCK, input_div=BLOCK),
            )
            return
        add_param(layer, "weight_scale", torch.empty(len(output_sizes)), SHARD_SCALE)
        if self.static:
            add_param(layer, "input_scale", torch.empty(len(output_sizes)), SHARD_SCALE)

    def process_weights_after_loading(self, layer: Module) -> None:
        n, k = sum(self.sizes), self.k
        if self.block:
            weight, scale = self.to_platform_fp8(tensor(layer, "weight"), tensor(layer, "weight_scale_inv"))
            replace_param(layer, "weight", weight)
            replace_param(layer, "weight_scale_inv", scale)
            self.w_scale_name, granularity, scales = "weight_scale_inv", "block", "block"
        elif self.static:  # one static scale per tensor on both sides: requantize the shards to their max
            weight, w_scale, in_scale = self.to_platform_fp8(
                tensor(layer, "weight"), tensor(layer, "weight_scale"), tensor(layer, "input_scale")
            )
            weight, w_scale = self.requantize(weight, w_scale, self.sizes)
            replace_param(layer, "weight", weight)
            replace_param(layer, "weight_scale", w_scale)
            replace_param(layer, "input_scale", in_scale.max().reshape(1))
            self.w_scale_name, granularity, scales = "weight_scale", "tensor", "tensor"
        else:  # dynamic per-token activations: each shard's scale becomes its rows' per-channel scale
            weight, w_scale = self.to_platform_fp8(tensor(layer, "weight"), tensor(layer, "weight_scale"))
            replace_param(layer, "weight", weight)
            per_channel = torch.cat([s.expand(size) for s, size in zip(w_scale, self.sizes, strict=True)])
            replace_param(layer, "weight_scale", per_channel.reshape(n, 1).contiguous())
            self.w_scale_name, granularity, scales = "weight_scale", "token", "channel"
        self.granularity = granularity
        self._quantize = self.bind("quant.quantize_fp8", QuantSpec(self.dtype, self.fp8_name, granularity))
        self._gemm = self.bind_weights(
            layer,
            "quant.fp8_gemm",
            GemmSpec(self.dtype, scales, self.fp8_name, n, k),
            {"b": "weight", "b_scale": self.w_scale_name},
        )

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        rows = flat(x)
        if self.static:
            q, q_scale = self._quantize(rows, self.fp8, "tensor", tensor(layer, "input_scale"))
        else:
            q, q_scale = self._quantize(rows, self.fp8, self.granularity)
        out = self._gemm(q, self.weights["b"], q_scale, self.weights["b_scale"], self.dtype, bias)
        return out.reshape(*x.shape[:-1], out.shape[-1])


class Fp8MoE(_Fp8Config, MoEScheme):
    """w13_weight [E, 2I, H], w2_weight [E, H, I] e4m3fn with w13_weight_scale [E, 2] (gate, up) and
    w2_weight_scale [E], or w13_weight_scale_inv [E, 2I/128, ceil(H/128)] and w2_weight_scale_inv
    [E, ceil(H/128), ceil(I/128)]. moe.experts quantizes activations itself, so static input scales
    have no place here."""

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
        if self.static:
            raise ValueError(
                "fp8 MoE scheme: moe.experts takes no static activation scales; "
                "use activation_scheme 'dynamic'"
            )
        e, h, i = num_experts, hidden_size, intermediate_size
        if self.block and i % BLOCK:
            raise ValueError(
                f"fp8 block MoE scheme: intermediate_size {i} must be a multiple of {BLOCK} "
                "so gate and up do not share a scale tile"
            )
        expert = ParamLayout(1, 2)
        add_param(layer, "w13_weight", torch.empty(e, 2 * i, h, dtype=CHECKPOINT_FP8), expert)
        add_param(layer, "w2_weight", torch.empty(e, h, i, dtype=CHECKPOINT_FP8), expert)
        if self.block:
            tiles = ParamLayout(1, 2, BLOCK, BLOCK)
            add_param(layer, "w13_weight_scale_inv", torch.empty(e, 2 * i // BLOCK, -(-h // BLOCK)), tiles)
            add_param(layer, "w2_weight_scale_inv", torch.empty(e, -(-h // BLOCK), -(-i // BLOCK)), tiles)
        else:
            add_param(layer, "w13_weight_scale", torch.empty(e, 2), ParamLayout(None, None, per_shard=True))
            add_param(layer, "w2_weight_scale", torch.empty(e), ParamLayout(None, None))
        quant = "fp8_block" if self.block else "fp8_tensor"
        self.spec = MoESpec(params_dtype, e, top_k, h, i, activation, quant, 128, expert_parallel)

    def process_weights_after_loading(self, layer: Module) -> None:
        suffix = "_scale_inv" if self.block else "_scale"
        for name in ("w13_weight", "w2_weight"):
            weight, scale = self.to_platform_fp8(tensor(layer, name), tensor(layer, name + suffix))
            if name == "w13_weight" and not self.block:  # gate and up to one scale per expert
                i = self.spec.intermediate_size
                pairs = [self.requantize(weight[e], scale[e], (i, i)) for e in range(weight.shape[0])]
                weight = torch.stack([w for w, _ in pairs])
                scale = torch.cat([s for _, s in pairs])
            replace_param(layer, name, weight)
            replace_param(layer, name + suffix, scale)
        super().process_weights_after_loading(layer)

    def weight_params(self) -> dict[str, str]:
        suffix = "_scale_inv" if self.block else "_scale"
        return super().weight_params() | {
            "w13_scale": "w13_weight" + suffix,
            "w2_scale": "w2_weight" + suffix,
        }


register("fp8", Fp8Linear, Fp8MoE)
