"""W8A8 int8 (quant_method "w8a8_int8"): int8 weights [N, K] with per-output-channel scales [N, 1], and
activations quantized per token on the fly (quant.quantize_int8 + quant.int8_gemm)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import Module

from anyaccel.ops.quant import GemmSpec, QuantSpec

from .base import LinearScheme, ParamLayout, add_param, flat, register


class Int8Linear(LinearScheme):
    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        self.n, self.k, self.dtype = sum(output_sizes), input_size, params_dtype
        add_param(layer, "weight", torch.empty(self.n, self.k, dtype=torch.int8), ParamLayout())
        add_param(layer, "weight_scale", torch.empty(self.n, 1), ParamLayout(output_dim=0, input_dim=None))

    def process_weights_after_loading(self, layer: Module) -> None:
        self._quantize = self.bind("quant.quantize_int8", QuantSpec(self.dtype))
        self._gemm = self.bind_weights(
            layer,
            "quant.int8_gemm",
            GemmSpec(self.dtype, "channel", n=self.n, k=self.k),
            {"b": "weight", "b_scale": "weight_scale"},
        )

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        q, scale = self._quantize(flat(x))
        out = self._gemm(q, self.weights["b"], scale, self.weights["b_scale"], self.dtype, bias)
        return out.reshape(*x.shape[:-1], self.n)


register("w8a8_int8", Int8Linear)
