"""Cases for comm.*: 2 and 3 ranks, float32/bfloat16/float16, float8 for the data-movement ops, odd shapes,
dims other than 0, uneven and zero all_to_all splits, every broadcast source.

Distributed cases follow conformance/distributed.py: make(seed) returns every rank's inputs, and must pickle
(it is a bound method of a frozen dataclass), since the kit sends it to the processes it spawns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from anyaccel.ops.comm import CommSpec

from ..case import Case, Inputs, Tolerance, generator, randn
from ..oracles import comm as oracle
from ..tolerance import for_dtype

FLOATS = (torch.float32, torch.bfloat16, torch.float16)
FLOAT8 = (torch.float8_e4m3fn, torch.float8_e5m2)
# Data movement: every element must arrive bit for bit. The 1e-30 only keeps the reported relative error
# finite where an element is 0; distinct float8/16/32 values differ by far more.
EXACT = {"*": Tolerance(1e-30, 0.0)}


@dataclass(frozen=True)
class CollectiveInputs:
    """Deterministic inputs of one collective on `world_size` ranks.

    shapes:   x's shape per rank (all equal except for uneven all_to_all)
    kwargs:   keyword arguments per rank (dim, src, split sizes), group_name excluded
    """

    world_size: int
    dtype: torch.dtype
    shapes: tuple[tuple[int, ...], ...]
    kwargs: tuple[tuple[tuple[str, Any], ...], ...]

    def make(self, seed: int) -> Inputs:
        """((rank 0's (args, kwargs), rank 1's, ...), {}): ranks draw from independent seeded streams."""
        per_rank = []
        for rank, shape in enumerate(self.shapes):
            x = randn(generator(seed * 1009 + rank), *shape, scale=2.0).to(self.dtype)
            per_rank.append(((x,), dict(self.kwargs[rank])))
        return tuple(per_rank), {}

    @property
    def max_bytes(self) -> int:
        return max(math.prod(shape) for shape in self.shapes) * self.dtype.itemsize


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _case(op: str, label: str, inputs: CollectiveInputs, tolerance: dict[str, Tolerance]) -> Case:
    spec = CommSpec(inputs.dtype, inputs.world_size, inputs.max_bytes)
    ident = f"ws={inputs.world_size} {label} {_name(inputs.dtype)}"
    return Case(
        op,
        ident,
        spec,
        inputs.make,
        getattr(oracle, op.split(".")[1]),
        tolerance,
        world_size=inputs.world_size,
    )


def _same(world_size: int, dtype: torch.dtype, shape: tuple[int, ...], **kwargs: Any) -> CollectiveInputs:
    per_rank = tuple(sorted(kwargs.items()))
    return CollectiveInputs(world_size, dtype, (shape,) * world_size, (per_rank,) * world_size)


def _reduction_tolerance(dtype: torch.dtype, world_size: int) -> dict[str, Tolerance]:
    # a backend may round each of the world_size - 1 partial sums to the dtype
    return for_dtype(dtype, float(world_size - 1))


def _all_reduce() -> list[Case]:
    grid = [(2, (1,)), (2, (7, 333)), (2, (3, 5, 129)), (3, (37, 65))]
    cases = [
        _case(
            "comm.all_reduce",
            f"shape={list(shape)}",
            _same(ws, dtype, shape),
            _reduction_tolerance(dtype, ws),
        )
        for dtype in FLOATS
        for ws, shape in grid
    ]
    big = _same(2, torch.float32, (256, 4096))  # 4 MiB: far above one-shot all-reduce sizes
    cases.append(_case("comm.all_reduce", "shape=[256, 4096]", big, _reduction_tolerance(torch.float32, 2)))
    return cases


def _all_gather() -> list[Case]:
    grid = [(2, (5, 3, 7), 0), (2, (5, 3, 7), 1), (2, (5, 3, 7), -1), (2, (1, 4097), 0), (3, (2, 9), 1)]
    return [
        _case("comm.all_gather", f"shape={list(shape)} dim={dim}", _same(ws, dtype, shape, dim=dim), EXACT)
        for dtype in FLOATS + FLOAT8
        for ws, shape, dim in grid
    ]


def _reduce_scatter() -> list[Case]:
    grid = [(2, (6, 33), 0), (2, (3, 10), 1), (2, (2, 3, 8), -1), (3, (9, 5), 0)]
    return [
        _case(
            "comm.reduce_scatter",
            f"shape={list(shape)} dim={dim}",
            _same(ws, dtype, shape, dim=dim),
            _reduction_tolerance(dtype, ws),
        )
        for dtype in FLOATS
        for ws, shape, dim in grid
    ]


def _exchange(dtype: torch.dtype, sent: tuple[tuple[int, ...], ...], width: int) -> CollectiveInputs:
    """all_to_all where rank i sends sent[i][j] rows of `width` columns to rank j."""
    world = len(sent)
    shapes = tuple((sum(row), width) for row in sent)
    kwargs = tuple(
        (("input_split_sizes", list(sent[i])), ("output_split_sizes", [sent[j][i] for j in range(world)]))
        for i in range(world)
    )
    return CollectiveInputs(world, dtype, shapes, kwargs)


# rank i sends EXCHANGES[k][i][j] rows to rank j: uneven, zero rows to a peer, and a rank with no rows at all
EXCHANGES = (((3, 1), (2, 4)), ((0, 5), (1, 0)), ((0, 0), (2, 3)), ((1, 0, 2), (0, 0, 3), (2, 1, 0)))


def _all_to_all() -> list[Case]:
    cases = []
    for dtype in FLOATS + FLOAT8:
        cases.append(_case("comm.all_to_all", "equal splits shape=[8, 5]", _same(2, dtype, (8, 5)), EXACT))
        for sent in EXCHANGES:
            label = "sent=" + "/".join(",".join(map(str, row)) for row in sent)
            cases.append(_case("comm.all_to_all", label, _exchange(dtype, sent, 7), EXACT))
    return cases


def _broadcast() -> list[Case]:
    grid = [(2, (4, 9), 0), (2, (4, 9), 1), (3, (33,), 2)]
    return [
        _case("comm.broadcast", f"shape={list(shape)} src={src}", _same(ws, dtype, shape, src=src), EXACT)
        for dtype in FLOATS + FLOAT8
        for ws, shape, src in grid
    ]


CASES = {
    "comm.all_reduce": _all_reduce,
    "comm.all_gather": _all_gather,
    "comm.reduce_scatter": _reduce_scatter,
    "comm.all_to_all": _all_to_all,
    "comm.broadcast": _broadcast,
}
