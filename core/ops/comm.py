"""comm.all_reduce, comm.all_gather, comm.reduce_scatter, comm.all_to_all, comm.broadcast.

Every op is functional (returns a new tensor) and names its torch.distributed process group by the group's
registered name (`ProcessGroup.group_name`), as torch's functional collectives do, so the ops trace under
torch.compile. Models call them through a `Communicator` (anyaccel.comm), never directly.

Every rank calls the op with the same dtype. Data-movement ops (all_gather, all_to_all, broadcast) carry any
dtype bit-exactly, float8 included. Reductions (all_reduce, reduce_scatter) sum floating-point tensors and
raise ValueError for float8: an fp8 value means nothing without its scale, so there is no correct fp8 sum
(dequantize first, or all_gather the fp8 data together with its scales).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect
from .common import preferred_dtype


@dataclass(frozen=True)
class CommSpec:
    """dtype: element type carried; world_size: ranks in the group; max_bytes: the largest input this
    binding will be called with, in bytes of one rank's x (x.nbytes; None: unbounded). A small-message
    kernel (e.g. a one-shot custom all-reduce) accepts only specs whose max_bytes fits its buffer (for
    all_gather the output is world_size * max_bytes); the Communicator binds one kernel per size class."""

    dtype: torch.dtype = torch.float32
    world_size: int = 2
    max_bytes: int | None = None


def all_reduce(x: torch.Tensor, group_name: str) -> torch.Tensor:
    """Sum of x over the ranks of the group; every rank gets the result. x: any shape, contiguous."""
    raise NotImplementedError


def all_gather(x: torch.Tensor, group_name: str, dim: int = 0) -> torch.Tensor:
    """Concatenation of every rank's x along `dim`, in rank order. Every rank passes the same shape; the
    result has that shape with `dim` world_size times larger."""
    raise NotImplementedError


def reduce_scatter(x: torch.Tensor, group_name: str, dim: int = 0) -> torch.Tensor:
    """Sum over ranks, then rank r keeps the r-th of world_size equal chunks along `dim`
    (x.shape[dim] must be divisible by world_size)."""
    raise NotImplementedError


def all_to_all(
    x: torch.Tensor,
    group_name: str,
    output_split_sizes: list[int] | None = None,
    input_split_sizes: list[int] | None = None,
) -> torch.Tensor:
    """Rank r sends rows input_split_sizes[j] (along dim 0) to rank j and receives output_split_sizes[j]
    rows from rank j, concatenated in rank order. None splits are equal. Splits may be uneven and zero."""
    raise NotImplementedError


def broadcast(x: torch.Tensor, group_name: str, src: int = 0) -> torch.Tensor:
    """Rank `src`'s x on every rank (group rank numbering); other ranks' x gives only shape and dtype."""
    raise NotImplementedError


def _fake_same(x, *args, **kwargs):
    return torch.empty_like(x)


def _fake_gather(x, group_name, dim=0):
    from torch.distributed.distributed_c10d import _get_group_size_by_name

    shape = list(x.shape)
    shape[dim] *= _get_group_size_by_name(group_name)
    return x.new_empty(shape)


def _fake_scatter(x, group_name, dim=0):
    from torch.distributed.distributed_c10d import _get_group_size_by_name

    shape = list(x.shape)
    shape[dim] //= _get_group_size_by_name(group_name)
    return x.new_empty(shape)


def _fake_all_to_all(x, group_name, output_split_sizes=None, input_split_sizes=None):
    rows = sum(output_split_sizes) if output_split_sizes is not None else x.shape[0]
    return x.new_empty((rows, *x.shape[1:]))


def _check_spec(op: str):
    def check(spec: CommSpec) -> None:
        expect(op, spec.world_size >= 1, f"world_size must be >= 1, got {spec.world_size}")

    return check


def _default(platform) -> CommSpec:
    return CommSpec(preferred_dtype(platform), 2)


def _op(name: str, fn, fake) -> OpDef:
    return OpDef(name, fn, CommSpec, fake, _default, check_spec=_check_spec(name))


ALL_REDUCE = _op("comm.all_reduce", all_reduce, _fake_same)
ALL_GATHER = _op("comm.all_gather", all_gather, _fake_gather)
REDUCE_SCATTER = _op("comm.reduce_scatter", reduce_scatter, _fake_scatter)
ALL_TO_ALL = _op("comm.all_to_all", all_to_all, _fake_all_to_all)
BROADCAST = _op("comm.broadcast", broadcast, _fake_same)
