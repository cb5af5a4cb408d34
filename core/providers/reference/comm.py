"""Torch reference for comm.* (contracts in anyaccel.ops.comm), on torch.distributed's process group API.

Runs over whatever backend the group was created with (the platform's dist backend; gloo on the CPU).
In torch 2.13 gloo carries and sums float32, float16 and bfloat16 natively, so nothing is upcast. No
backend carries float8 reliably (gloo rejects it as an invalid scalar type), so the data-movement ops
send float8 as its raw bytes (uint8 of the same size) and the reductions refuse float8 with a ValueError.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.distributed_c10d import GroupName, _resolve_process_group

from anyaccel.ops.base import expect, fail


def _group(group_name: str) -> dist.ProcessGroup:
    return _resolve_process_group(GroupName(group_name))


def _is_float8(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point and dtype.itemsize == 1


def _carried(x: torch.Tensor) -> torch.Tensor:
    """x as a backend can carry it: float8 reinterpreted as uint8 (a pure relabelling of the bytes)."""
    x = x.contiguous()
    return x.view(torch.uint8) if _is_float8(x.dtype) else x


def _summable(op: str, x: torch.Tensor) -> None:
    if _is_float8(x.dtype):
        raise fail(
            op,
            f"cannot sum {x.dtype} across ranks: an fp8 value means nothing without its scale; "
            "dequantize before reducing, or all_gather the fp8 data and its scales",
        )


def all_reduce(x: torch.Tensor, group_name: str) -> torch.Tensor:
    _summable("comm.all_reduce", x)
    out = x.clone(memory_format=torch.contiguous_format)
    dist.all_reduce(out, group=_group(group_name))
    return out


def all_gather(x: torch.Tensor, group_name: str, dim: int = 0) -> torch.Tensor:
    expect("comm.all_gather", x.dim() > 0, "x must have at least one dim to concatenate along")
    group = _group(group_name)
    size = group.size()
    send = _carried(x)
    rows = send.new_empty((size * send.shape[0], *send.shape[1:]))
    dist.all_gather_single(rows, send, group=group)
    shape = list(x.shape)
    shape[dim] *= size
    # rank blocks stacked on a new leading axis; moving that axis next to `dim` concatenates in rank order
    return rows.view(x.dtype).reshape(size, *x.shape).movedim(0, dim % x.dim()).reshape(shape)


def reduce_scatter(x: torch.Tensor, group_name: str, dim: int = 0) -> torch.Tensor:
    op = "comm.reduce_scatter"
    _summable(op, x)
    group = _group(group_name)
    size = group.size()
    expect(
        op,
        x.dim() > 0 and x.shape[dim] % size == 0,
        f"x.shape[{dim}] must be divisible by the world size {size}, got shape {list(x.shape)}",
    )
    rows = x.movedim(dim, 0).contiguous()
    out = rows.new_empty((rows.shape[0] // size, *rows.shape[1:]))
    dist.reduce_scatter_single(out, rows, group=group)
    return out.movedim(0, dim).contiguous()


def all_to_all(
    x: torch.Tensor,
    group_name: str,
    output_split_sizes: list[int] | None = None,
    input_split_sizes: list[int] | None = None,
) -> torch.Tensor:
    op = "comm.all_to_all"
    group = _group(group_name)
    size = group.size()
    splits_by_name = {"output_split_sizes": output_split_sizes, "input_split_sizes": input_split_sizes}
    for name, splits in splits_by_name.items():
        expect(
            op,
            splits is None or (len(splits) == size and all(n >= 0 for n in splits)),
            f"{name} must list {size} non-negative row counts, got {splits}",
        )
    expect(op, x.dim() > 0, "x must have at least one dim (rows are split along dim 0)")
    if input_split_sizes is None:
        expect(
            op,
            x.shape[0] % size == 0,
            f"x.shape[0] must be divisible by {size} when input_split_sizes is None, got {x.shape[0]}",
        )
    else:
        expect(
            op,
            sum(input_split_sizes) == x.shape[0],
            f"input_split_sizes {input_split_sizes} must sum to x.shape[0] = {x.shape[0]}",
        )
    rows = sum(output_split_sizes) if output_split_sizes is not None else x.shape[0]
    send = _carried(x)
    out = send.new_empty((rows, *send.shape[1:]))
    dist.all_to_all_single(out, send, output_split_sizes, input_split_sizes, group=group)
    return out.view(x.dtype)


def broadcast(x: torch.Tensor, group_name: str, src: int = 0) -> torch.Tensor:
    out = x.clone(memory_format=torch.contiguous_format)
    dist.broadcast(_carried(out), group_src=src, group=_group(group_name))
    return out
