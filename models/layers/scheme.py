"""The quantization-scheme slot of a linear layer: how it creates, post-processes and applies its weights.

A scheme object has
    create_weights(layer, out_features, in_features, dtype)  registers the parameters on `layer`
    weight_names()                                           the parameters the checkpoint fills, with the dim
                                                             along which each is stacked (parts) and split
    process_weights_after_loading(layer)                     repacks after loading (no-op when dense)
    apply(layer, x, bias)                                    y = x @ W.T + bias
UnquantizedScheme is the default: a dense weight in the model dtype and torch's own matmul.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UnquantizedScheme:
    """Dense weight [out_features, in_features] in the model dtype."""

    name = "none"

    def create_weights(
        self, layer: nn.Module, out_features: int, in_features: int, dtype: torch.dtype
    ) -> None:
        layer.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=dtype), requires_grad=False)

    def weight_names(self) -> tuple[str, ...]:
        return ("weight",)

    def process_weights_after_loading(self, layer: nn.Module) -> None:
        return None

    def apply(self, layer: nn.Module, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, layer.weight, bias)


UNQUANTIZED = UnquantizedScheme()
