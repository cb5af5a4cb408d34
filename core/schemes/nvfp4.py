"""NVFP4 dense linears from NVIDIA ModelOpt and from compressed-tensors, through quant.mx_gemm (format
"nvfp4", anyaccel.ops.microscaling; docs/quantization.md).

ModelOpt (quantization_config {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
"exclude_modules": [wildcards]}, or the same keys under "quantization" in hf_quant_config.json):
    weight          uint8 [N, K/2]        two e2m1 per byte, element 2i in the low nibble
    weight_scale    float8_e4m3fn [N, K/16]
    weight_scale_2  float32 (one)         the global: real = e2m1 * weight_scale * weight_scale_2
    input_scale     float32 (one)         the activations' static global (amax / (6 * 448))
compressed-tensors (quant_method "compressed-tensors", format "nvfp4-pack-quantized", weights of type
"float", 4 bits, strategy "tensor_group", group_size 16; "ignore": names or "re:" patterns):
    weight_packed, weight_scale as above; weight_global_scale and input_global_scale float32 [1] hold the
    RECIPROCAL of the global (compressed-tensors' generate_gparam: 448 * 6 / amax), inverted here.

Merged layers (q/k/v, gate/up) load one global per part; ModelOpt exports fused parts with one shared
global. Parts whose globals differ have their block scales rescaled once to the largest global
(e4m3(scale * g_part / g_max)), the only lossy step, taken only for such checkpoints.
Activations stay in the model's dtype (weight-only): the input global is kept on the layer for kernels
that quantize activations (quant.quantize_mx to nvfp4, then the nvfp4 x nvfp4 form of quant.mx_gemm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module

from anyaccel.ops.microscaling import NVFP4
from anyaccel.ops.mx import MXGemmSpec
from anyaccel.platforms.base import Platform

from .base import LinearScheme, ParamLayout, add_param, flat, register, replace_param, tensor

SHARD_GLOBAL = ParamLayout(output_dim=None, input_dim=None, per_shard=True)


class _Nvfp4Linear(LinearScheme):
    """Shared by both checkpoint forms: `names` maps the roles to the checkpoint's tensor names."""

    names = {"weight": "weight", "scale": "weight_scale", "global": "weight_scale_2", "input": "input_scale"}
    reciprocal = False  # compressed-tensors stores 1 / global

    def __init__(self, config: Mapping[str, Any], platform: Platform | None = None) -> None:
        super().__init__(config, platform)
        self.check_config(config)

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Raise a ValueError naming the scheme when the checkpoint is not NVFP4 as read here."""

    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        who = type(self).__name__
        n, k = sum(output_sizes), input_size
        if k % NVFP4.block:
            raise ValueError(f"{who}: input size {k} must be a multiple of {NVFP4.block} (nvfp4 blocks)")
        self.sizes, self.n, self.k, self.dtype = list(output_sizes), n, k, params_dtype
        names = self.names
        add_param(layer, names["weight"], torch.empty(n, k // 2, dtype=torch.uint8), ParamLayout(input_div=2))
        add_param(
            layer,
            names["scale"],
            torch.empty(n, k // NVFP4.block, dtype=torch.float8_e4m3fn),
            ParamLayout(input_div=NVFP4.block),
        )
        add_param(layer, names["global"], torch.empty(len(output_sizes)), SHARD_GLOBAL)
        add_param(layer, names["input"], torch.empty(len(output_sizes)), SHARD_GLOBAL)

    def process_weights_after_loading(self, layer: Module) -> None:
        names = self.names
        globals_ = tensor(layer, names["global"]).float()
        inputs = tensor(layer, names["input"]).float()
        if self.reciprocal:
            globals_, inputs = 1.0 / globals_, 1.0 / inputs
        top = globals_.max()
        scale = tensor(layer, names["scale"])
        if not bool((globals_ == top).all()):  # one global for the merged parts: rescale the others'
            ratio = torch.cat([(g / top).expand(size) for g, size in zip(globals_, self.sizes, strict=True)])
            scale = (scale.float() * ratio[:, None]).to(torch.float8_e4m3fn)
        replace_param(layer, names["scale"], scale.contiguous())
        replace_param(layer, names["global"], top.reshape(1))
        replace_param(layer, names["input"], inputs.max().reshape(1))
        has_bias = getattr(layer, "bias", None) is not None
        self._gemm = self.bind_weights(
            layer,
            "quant.mx_gemm",
            MXGemmSpec(self.dtype, "nvfp4", "none", self.n, self.k, has_bias),
            {"w": names["weight"], "w_scale": names["scale"], "w_global_scale": names["global"]},
        )

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        w = self.weights
        out = self._gemm(
            flat(x),
            w["w"],
            w["w_scale"],
            self.dtype,
            None,
            w["w_global_scale"],
            None,
            bias,
        )
        return out.reshape(*x.shape[:-1], out.shape[-1])


class ModelOptNvfp4Linear(_Nvfp4Linear):
    def check_config(self, config: Mapping[str, Any]) -> None:
        algo = config.get("quant_algo")
        if algo != "NVFP4":
            raise ValueError(f"modelopt scheme: quant_algo {algo!r} is not supported here (NVFP4 only)")
        if int(config.get("group_size", NVFP4.block)) != NVFP4.block:
            raise ValueError(
                f"modelopt scheme: NVFP4 blocks are 16 values, got group_size {config['group_size']}"
            )


class CompressedTensorsNvfp4Linear(_Nvfp4Linear):
    names = {
        "weight": "weight_packed",
        "scale": "weight_scale",
        "global": "weight_global_scale",
        "input": "input_global_scale",
    }
    reciprocal = True

    def check_config(self, config: Mapping[str, Any]) -> None:
        fmt = config.get("format")
        if fmt != "nvfp4-pack-quantized":
            raise ValueError(
                f"compressed-tensors scheme: format {fmt!r} is not supported (nvfp4-pack-quantized)"
            )
        for name, group in (config.get("config_groups") or {}).items():
            w = group.get("weights") or {}
            ok = (
                w.get("num_bits") == 4
                and w.get("type") == "float"
                and w.get("strategy") == "tensor_group"
                and int(w.get("group_size") or 0) == NVFP4.block
            )
            if not ok:
                raise ValueError(
                    f"compressed-tensors scheme: config group {name!r} is not NVFP4 weights (4-bit float, "
                    f"tensor_group strategy, group_size 16): {w}"
                )


register("modelopt", ModelOptNvfp4Linear)
register("compressed-tensors", CompressedTensorsNvfp4Linear)
