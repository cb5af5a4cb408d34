"""Group-quantized weights read as they are stored, with the activation dtype's math (float32 included):

    "w4_affine" {"group_size": 32|64|128, "scales_dtype": "float32"|"float16"|"bfloat16"}: w = q * scale +
        offset per group of G input features, q in 0..15; parameters qweight [N, K/8] int32 (8 features per
        word along K), scales and qzeros (the offsets) [N, K/G] in scales_dtype (default float32); applied
        with quant.w4a16_gemm, format "affine". GGUF Q4_0 / Q4_1 (float16) / Q4_K (float32), MLX's affine
        4-bit format and HQQ's 4-bit format are this.
    "w8_group" {"group_size": 16|32|64|128}: w = q * scale, q int8; parameters qweight [N, K] int8, scales
        [N, K/G] float32; applied with quant.w8a16_gemm. GGUF Q8_0 (G 32) and Q6_K (G 16) are this.

Both take {"activations": "int8"} for their int8-activation GEMMs (quant.w4a8_gemm / quant.w8a8_gemm: x
quantized per 32 input features inside the op, llama.cpp's arithmetic; K a multiple of 32); the default is
"float".

These are the layouts the GGUF loader repacks into (anyaccel.models.gguf), once, at load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module

from anyaccel.ops.a8 import ACTIVATIONS
from anyaccel.ops.quant import AFFINE_SCALE_DTYPES, W8_GROUPS, W4A16Spec, W8A16Spec
from anyaccel.platforms.base import Platform

from .base import LinearScheme, ParamLayout, add_param, flat, register
from .packing import PACK


class _Grouped(LinearScheme):
    groups: tuple[int, ...] = (32, 64, 128)

    def __init__(self, config: Mapping[str, Any], platform: Platform | None = None) -> None:
        super().__init__(config, platform)
        self.group = int(config.get("group_size", 32))
        method = config.get("quant_method")
        if self.group not in self.groups:
            raise ValueError(f"{method} scheme: group_size must be one of {self.groups}, got {self.group}")
        self.activations = config.get("activations", "float")
        if self.activations not in ACTIVATIONS:
            raise ValueError(
                f"{method} scheme: activations must be one of {ACTIVATIONS}, got {self.activations!r}"
            )

    def sizes(self, input_size: int, output_sizes: Sequence[int], params_dtype: torch.dtype) -> None:
        self.n, self.k, self.dtype = sum(output_sizes), input_size, params_dtype
        if self.activations == "int8" and self.k % 32:
            raise ValueError(
                f"{self.config.get('quant_method')} scheme: int8 activations need K a multiple of 32, "
                f"got {self.k}"
            )
        if self.k % self.group:
            raise ValueError(
                f"{self.config.get('quant_method')} scheme: K={self.k} is not a multiple of "
                f"group_size {self.group}"
            )

    def scales_param(self, layer: Module, name: str, dtype: torch.dtype = torch.float32) -> None:
        scales = torch.empty(self.n, self.k // self.group, dtype=dtype)
        add_param(layer, name, scales, ParamLayout(0, 1, 1, self.group))


class AffineW4Linear(_Grouped):
    def __init__(self, config: Mapping[str, Any], platform: Platform | None = None) -> None:
        super().__init__(config, platform)
        names = {str(d).removeprefix("torch."): d for d in AFFINE_SCALE_DTYPES}
        stored = config.get("scales_dtype", "float32")
        if stored not in names:
            raise ValueError(f"w4_affine scheme: scales_dtype must be one of {tuple(names)}, got {stored!r}")
        self.scales_dtype = names[stored]

    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        self.sizes(input_size, output_sizes, params_dtype)
        qweight = torch.empty(self.n, self.k // PACK, dtype=torch.int32)
        add_param(layer, "qweight", qweight, ParamLayout(0, 1, 1, PACK))
        self.scales_param(layer, "scales", self.scales_dtype)
        self.scales_param(layer, "qzeros", self.scales_dtype)

    def process_weights_after_loading(self, layer: Module) -> None:
        spec = W4A16Spec(self.dtype, "affine", self.group, True, False, self.n, self.k, self.scales_dtype)
        params = {"qweight": "qweight", "scales": "scales", "qzeros": "qzeros"}
        op = "quant.w4a8_gemm" if self.activations == "int8" else "quant.w4a16_gemm"
        self._gemm = self.bind_weights(layer, op, spec, params)

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        w = self.weights
        out = self._gemm(flat(x), w["qweight"], w["scales"], w["qzeros"], None, bias)
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], self.n)


class GroupW8Linear(_Grouped):
    groups = W8_GROUPS

    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        self.sizes(input_size, output_sizes, params_dtype)
        add_param(layer, "qweight", torch.empty(self.n, self.k, dtype=torch.int8), ParamLayout())
        self.scales_param(layer, "scales")

    def process_weights_after_loading(self, layer: Module) -> None:
        spec = W8A16Spec(self.dtype, self.group, self.n, self.k)
        params = {"qweight": "qweight", "scales": "scales"}
        op = "quant.w8a8_gemm" if self.activations == "int8" else "quant.w8a16_gemm"
        self._gemm = self.bind_weights(layer, op, spec, params)

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        out = self._gemm(flat(x), self.weights["qweight"], self.weights["scales"], bias)
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], self.n)


register("w4_affine", AffineW4Linear)
register("w8_group", GroupW8Linear)
