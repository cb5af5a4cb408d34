"""Linear layers with tensor parallelism (Megatron style) and a quantization-scheme slot.

Column-parallel layers split the output dim across ranks (no communication); row-parallel layers split the
input dim and all-reduce the partial products. A column-parallel layer may stack several checkpoint tensors
along its output dim (q/k/v, gate/up): each is a `Part` with its own shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..parallel import SINGLE, Parallel
from .scheme import UNQUANTIZED
from .weights import WeightSlot, parent, sharded_copy


@dataclass(frozen=True)
class Part:
    """One checkpoint tensor stacked along the output dim: `name` is its module name next to this layer
    ("" for the layer's own name), `rows` its full output size, and this rank reads
    [start, start + length)."""

    name: str
    rows: int
    start: int
    length: int


class LinearBase(nn.Module):
    def __init__(
        self, in_features: int, out_features: int, *, bias: bool, dtype: torch.dtype, scheme=UNQUANTIZED
    ):
        super().__init__()
        self.in_features, self.out_features, self.scheme = in_features, out_features, scheme
        scheme.create_weights(self, out_features, in_features, dtype)
        self.bias = (
            nn.Parameter(torch.empty(out_features, dtype=dtype), requires_grad=False) if bias else None
        )

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
        scheme=UNQUANTIZED,
    ):
        self.parts = parts
        super().__init__(in_features, sum(p.length for p in parts), bias=bias, dtype=dtype, scheme=scheme)

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

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        offset = 0
        for part in self.parts:
            base = f"{parent(prefix)}{part.name}" if part.name else prefix
            for suffix in self.scheme.weight_names():
                param = getattr(self, suffix)
                load = sharded_copy(param.data, 0, part.start, part.length, offset)
                yield WeightSlot(f"{base}.{suffix}", (part.rows, *param.shape[1:]), load)
            if self.bias is not None:
                load = sharded_copy(self.bias.data, 0, part.start, part.length, offset)
                yield WeightSlot(f"{base}.bias", (part.rows,), load)
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
        scheme=UNQUANTIZED,
    ):
        self.parallel, self.reduce, self.full_in = parallel, reduce, in_features
        self.in_start, local_in = parallel.split(in_features, "input features")
        super().__init__(local_in, out_features, bias=bias, dtype=dtype, scheme=scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scheme.apply(self, x, None)
        if self.reduce:
            y = self.parallel.all_reduce(y)
        return y if self.bias is None else y + self.bias

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        for suffix in self.scheme.weight_names():
            param = getattr(self, suffix)
            load = sharded_copy(param.data, 1, self.in_start, self.in_features)
            yield WeightSlot(f"{prefix}.{suffix}", (param.shape[0], self.full_in), load)
        if self.bias is not None:
            yield WeightSlot(f"{prefix}.bias", (self.out_features,), sharded_copy(self.bias.data))


class ReplicatedLinear(ColumnParallelLinear):
    """Every rank holds the whole weight (routers, low-rank projections)."""

    def __init__(self, in_features: int, out_features: int, **kwargs):
        super().__init__(in_features, [Part("", out_features, 0, out_features)], **kwargs)
