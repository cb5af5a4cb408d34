"""Linear layers with tensor parallelism (Megatron style) and a quantization scheme (anyaccel.schemes).

Column-parallel layers split the output dim across ranks (no communication); row-parallel layers split the
input dim and all-reduce the partial products. A column-parallel layer may stack several checkpoint tensors
along its output dim (q/k/v, gate/up): each is a `Part` with its own shard.

The scheme comes from the checkpoint's quantization_config (`quant`; None: dense weights). It registers the
parameters under their checkpoint names (weight, weight_scale_inv, qweight, ...), each with a ParamLayout
from which `weight_slots` derives what this rank reads of every part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from anyaccel.schemes import ParamLayout, linear_scheme

from ..parallel import SINGLE, Parallel
from .module import Layer
from .weights import Span, WeightSlot, layout_slot, parent, scheme_params

QuantConfig = Mapping[str, Any] | None  # a checkpoint's quantization_config; None: unquantized
BIAS = ParamLayout(output_dim=0, input_dim=None)


@dataclass(frozen=True)
class Part:
    """One checkpoint tensor stacked along the output dim: `name` is its module name next to this layer
    ("" for the layer's own name), `rows` its full output size, and this rank reads
    [start, start + length)."""

    name: str
    rows: int
    start: int
    length: int


class LinearBase(Layer):
    """Holds the scheme and the bias; `output_sizes` are the merged parts' local sizes."""

    def __init__(
        self,
        in_features: int,
        output_sizes: list[int],
        *,
        bias: bool,
        dtype: torch.dtype,
        quant: QuantConfig = None,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, sum(output_sizes)
        self.output_sizes, self.dtype = output_sizes, dtype
        self.use_scheme(quant)
        self.bias = (
            nn.Parameter(torch.empty(self.out_features, dtype=dtype), requires_grad=False) if bias else None
        )

    def use_scheme(self, quant: QuantConfig) -> None:
        """(Re)create the weights for `quant`'s scheme (before loading): a layer the checkpoint left
        unquantized (modules_to_not_convert) goes back to dense weights."""
        for name, _, _ in list(scheme_params(self)):
            delattr(self, name)
        self.scheme = linear_scheme(quant)
        self.scheme.create_weights(
            self, self.in_features, self.output_sizes, self.dtype, self.full_input_size()
        )

    def full_input_size(self) -> int | None:
        """The whole layer's input size when this rank holds a shard of it (None: not split)."""
        return None

    def checkpoint_modules(self, prefix: str) -> list[str]:
        """The checkpoint module names this layer reads (its parts' for a merged layer)."""
        return [prefix]

    def process_weights_after_loading(self) -> None:
        self.scheme.process_weights_after_loading(self)


class ColumnParallelLinear(LinearBase):
    """y = x @ W_local.T (+ b). x: [T, in_features] replicated; y: [T, sum of part lengths]."""

    def __init__(
        self,
        in_features: int,
        parts: list[Part],
        *,
        bias: bool = False,
        dtype: torch.dtype,
        quant: QuantConfig = None,
    ):
        self.parts = parts
        super().__init__(in_features, [p.length for p in parts], bias=bias, dtype=dtype, quant=quant)

    @classmethod
    def split(
        cls,
        in_features: int,
        out_features: int,
        parallel: Parallel = SINGLE,
        *,
        names: tuple[str, ...] = ("",),
        **kwargs,
    ) -> ColumnParallelLinear:
        """Each named checkpoint tensor has out_features rows, split evenly across ranks (gate, up)."""
        start, length = parallel.split(out_features, "output features")
        return cls(in_features, [Part(n, out_features, start, length) for n in names], **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scheme.apply(self, x, self.bias)

    def checkpoint_modules(self, prefix: str) -> list[str]:
        return [f"{parent(prefix)}{part.name}" if part.name else prefix for part in self.parts]

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        params = list(scheme_params(self))
        if self.bias is not None:
            params.append(("bias", self.bias.data, BIAS))
        offset = 0
        for index, (part, base) in enumerate(zip(self.parts, self.checkpoint_modules(prefix), strict=True)):
            rows = Span(part.rows, part.start, part.length, offset)
            for name, data, layout in params:
                yield layout_slot(f"{base}.{name}", data, layout, rows, Span(self.in_features), index)
            offset += part.length


def qkv_parts(num_heads: int, num_kv_heads: int, head_dim: int, parallel: Parallel) -> list[Part]:
    """q, k and v projections of one rank. Query heads are split; key/value heads are split too, or, with
    fewer kv heads than ranks, each rank reads the one kv head its query heads share (replication)."""
    q_start, q_len = parallel.split(num_heads * head_dim, "query heads x head_dim")
    if num_kv_heads >= parallel.world_size:
        kv_start, kv_len = parallel.split(num_kv_heads * head_dim, "key/value heads x head_dim")
    else:
        if parallel.world_size % num_kv_heads:
            raise ValueError(
                f"{parallel.world_size} ranks cannot share {num_kv_heads} key/value heads evenly"
            )
        kv_start, kv_len = parallel.rank * num_kv_heads // parallel.world_size * head_dim, head_dim
    kv_rows = num_kv_heads * head_dim
    return [
        Part("q_proj", num_heads * head_dim, q_start, q_len),
        Part("k_proj", kv_rows, kv_start, kv_len),
        Part("v_proj", kv_rows, kv_start, kv_len),
    ]


class RowParallelLinear(LinearBase):
    """y = all_reduce(x_local @ W_local.T) + b. x: [T, in_features / world]; W split along its input dim.
    With reduce=False the caller sums partial outputs itself (one all-reduce for MoE + shared experts)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        parallel: Parallel = SINGLE,
        *,
        bias: bool = False,
        dtype: torch.dtype,
        reduce: bool = True,
        quant: QuantConfig = None,
    ):
        self.parallel, self.reduce, self.full_in = parallel, reduce, in_features
        self.in_start, local_in = parallel.split(in_features, "input features")
        super().__init__(local_in, [out_features], bias=bias, dtype=dtype, quant=quant)

    def full_input_size(self) -> int | None:
        return self.full_in if self.full_in != self.in_features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scheme.apply(self, x, None)
        if self.reduce:
            y = self.parallel.all_reduce(y)
        return y if self.bias is None else y + self.bias

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        columns = Span(self.full_in, self.in_start, self.in_features)
        for name, data, layout in scheme_params(self):
            yield layout_slot(f"{prefix}.{name}", data, layout, Span(self.out_features), columns)
        if self.bias is not None:
            yield layout_slot(f"{prefix}.bias", self.bias.data, BIAS, Span(self.out_features), columns)


class ReplicatedLinear(ColumnParallelLinear):
    """Every rank holds the whole weight (routers, low-rank projections)."""

    def __init__(self, in_features: int, out_features: int, **kwargs):
        super().__init__(in_features, [Part("", out_features, 0, out_features)], **kwargs)
