"""ATen ops in MLX: the lowering table of the backend (one entry per aten overload a model graph uses).

Each entry takes the node's arguments with tensors already MLX arrays and returns MLX arrays. Semantics
follow the aten op (broadcasting, dtype promotion by MLX's rules, which match torch's for the cases models
produce: same-dtype operands and Python scalars).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx
import torch

from ..convert import mx_dtype
from ..ops.activation import gelu, silu

aten = torch.ops.aten


def _dims(dim: int | Sequence[int] | None) -> list[int] | None:
    return None if dim is None else ([dim] if isinstance(dim, int) else list(dim))


def _reduce(fn: Callable[..., mx.array]) -> Callable[..., mx.array]:
    def run(
        x: mx.array, dim: Any = None, keepdim: bool = False, *, dtype: torch.dtype | None = None
    ) -> mx.array:
        out = fn(x if dtype is None else x.astype(mx_dtype(dtype)), axis=_dims(dim), keepdims=keepdim)
        return out

    return run


def _to_copy(x: mx.array, *, dtype: torch.dtype | None = None, **_: Any) -> mx.array:
    return x if dtype is None else x.astype(mx_dtype(dtype))


def _slice(
    x: mx.array, dim: int = 0, start: int | None = None, end: int | None = None, step: int = 1
) -> mx.array:
    index: list[Any] = [slice(None)] * x.ndim
    index[dim] = slice(start, None if end is None or end >= 2**62 else end, step)
    return x[tuple(index)]


def _select(x: mx.array, dim: int, i: int) -> mx.array:
    index: list[Any] = [slice(None)] * x.ndim
    index[dim] = i
    return x[tuple(index)]


def _index(x: mx.array, indices: Sequence[mx.array | None]) -> mx.array:
    return x[tuple(slice(None) if i is None else i for i in indices)]


def _split(x: mx.array, size: int, dim: int = 0) -> list[mx.array]:
    return mx.split(x, list(range(size, x.shape[dim], size)), axis=dim)


def _split_sizes(x: mx.array, sizes: Sequence[int], dim: int = 0) -> list[mx.array]:
    bounds = [sum(sizes[:i]) for i in range(1, len(sizes))]
    return mx.split(x, bounds, axis=dim)


def _factory(fill: Callable[..., mx.array]) -> Callable[..., mx.array]:
    def run(size: Sequence[int], *args: Any, dtype: torch.dtype | None = None, **_: Any) -> mx.array:
        return fill(list(size), *args, dtype=mx_dtype(dtype or torch.float32))

    return run


def _arange(
    start: int, end: int | None = None, step: int = 1, *, dtype: torch.dtype | None = None, **_: Any
) -> mx.array:
    if end is None:
        start, end = 0, start
    return mx.arange(start, end, step, dtype=mx_dtype(dtype or torch.int64))


def _expand(x: mx.array, size: Sequence[int], **_: Any) -> mx.array:
    lead = len(size) - x.ndim
    shape = [x.shape[i - lead] if s == -1 else s for i, s in enumerate(size)]
    return mx.broadcast_to(x, shape)


def _view(x: mx.array, size: Sequence[int]) -> mx.array:
    return x.reshape(list(size))


def _softmax(x: mx.array, dim: int, half_to_float: bool = False) -> mx.array:
    return mx.softmax(x, axis=dim, precise=True)


def _topk(
    x: mx.array, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
) -> tuple[mx.array, mx.array]:
    order = mx.argsort(-x if largest else x, axis=dim)
    ids = _slice(order, dim % x.ndim, 0, k)
    return mx.take_along_axis(x, ids, axis=dim), ids.astype(mx.int64)


def _embedding(weight: mx.array, ids: mx.array, *_: Any) -> mx.array:
    return weight[ids]


def _add(x: Any, y: Any, *, alpha: float = 1) -> mx.array:
    return x + (y if alpha == 1 else y * alpha)


def _sub(x: Any, y: Any, *, alpha: float = 1) -> mx.array:
    return x - (y if alpha == 1 else y * alpha)


def _addmm(bias: mx.array, a: mx.array, b: mx.array, *, beta: float = 1, alpha: float = 1) -> mx.array:
    return mx.addmm(bias, a, b, alpha=alpha, beta=beta)


def _max_dim(x: mx.array, dim: int, keepdim: bool = False) -> tuple[mx.array, mx.array]:
    return mx.max(x, axis=dim, keepdims=keepdim), mx.argmax(x, axis=dim, keepdims=keepdim).astype(mx.int64)


def _where(cond: mx.array, x: Any, y: Any) -> mx.array:
    return mx.where(cond, x, y)


ATEN: dict[Any, Callable[..., Any]] = {
    aten.add.Tensor: _add,
    aten.add.Scalar: _add,
    aten.sub.Tensor: _sub,
    aten.sub.Scalar: _sub,
    aten.rsub.Scalar: lambda x, y, alpha=1: y - x * alpha,
    aten.mul.Tensor: operator.mul,
    aten.mul.Scalar: operator.mul,
    aten.div.Tensor: operator.truediv,
    aten.div.Scalar: operator.truediv,
    aten.neg.default: operator.neg,
    aten.pow.Tensor_Scalar: operator.pow,
    aten.pow.Tensor_Tensor: operator.pow,
    aten.rsqrt.default: mx.rsqrt,
    aten.sqrt.default: mx.sqrt,
    aten.exp.default: mx.exp,
    aten.log.default: mx.log,
    aten.abs.default: mx.abs,
    aten.tanh.default: mx.tanh,
    aten.sigmoid.default: mx.sigmoid,
    aten.reciprocal.default: mx.reciprocal,
    aten.cos.default: mx.cos,
    aten.sin.default: mx.sin,
    aten.silu.default: silu,
    aten.gelu.default: lambda x, approximate="none": gelu(x, approximate),
    aten.relu.default: lambda x: mx.maximum(x, 0),
    aten.maximum.default: mx.maximum,
    aten.minimum.default: mx.minimum,
    aten.clamp.default: lambda x, lo=None, hi=None: mx.clip(x, lo, hi),
    aten.eq.Tensor: operator.eq,
    aten.eq.Scalar: operator.eq,
    aten.ne.Scalar: operator.ne,
    aten.ne.Tensor: operator.ne,
    aten.lt.Tensor: operator.lt,
    aten.lt.Scalar: operator.lt,
    aten.le.Tensor: operator.le,
    aten.le.Scalar: operator.le,
    aten.gt.Tensor: operator.gt,
    aten.gt.Scalar: operator.gt,
    aten.ge.Tensor: operator.ge,
    aten.ge.Scalar: operator.ge,
    aten.logical_and.default: mx.logical_and,
    aten.logical_or.default: mx.logical_or,
    aten.logical_not.default: mx.logical_not,
    aten.bitwise_and.Tensor: mx.logical_and,
    aten.where.self: _where,
    aten.mean.dim: _reduce(mx.mean),
    aten.sum.dim_IntList: _reduce(mx.sum),
    aten.sum.default: _reduce(mx.sum),
    aten.amax.default: _reduce(mx.max),
    aten.amin.default: _reduce(mx.min),
    aten.max.dim: _max_dim,
    aten.argmax.default: lambda x, dim=None, keepdim=False: mx.argmax(x, axis=dim, keepdims=keepdim).astype(
        mx.int64
    ),
    aten._softmax.default: _softmax,
    aten.topk.default: _topk,
    aten.mm.default: mx.matmul,
    aten.bmm.default: mx.matmul,
    aten.addmm.default: _addmm,
    aten.embedding.default: _embedding,
    aten.view.default: _view,
    aten._unsafe_view.default: _view,
    aten.reshape.default: _view,
    aten.permute.default: lambda x, dims: x.transpose(list(dims)),
    aten.t.default: lambda x: x.T,
    aten.transpose.int: lambda x, a, b: x.swapaxes(a, b),
    aten.unsqueeze.default: lambda x, d: mx.expand_dims(x, d % (x.ndim + 1)),
    aten.squeeze.dim: lambda x, d: x.squeeze(d) if x.shape[d] == 1 else x,
    aten.expand.default: _expand,
    aten.slice.Tensor: _slice,
    aten.select.int: _select,
    aten.index.Tensor: _index,
    aten.index_select.default: lambda x, dim, idx: mx.take(x, idx, axis=dim),
    aten.gather.default: lambda x, dim, idx: mx.take_along_axis(x, idx, axis=dim),
    aten.cat.default: lambda xs, dim=0: mx.concatenate(list(xs), axis=dim),
    aten.stack.default: lambda xs, dim=0: mx.stack(list(xs), axis=dim),
    aten.split.Tensor: _split,
    aten.split_with_sizes.default: _split_sizes,
    aten.clone.default: lambda x, **_: x,
    aten.alias.default: lambda x: x,
    aten.detach.default: lambda x: x,
    aten.contiguous.default: lambda x, **_: x,
    aten.lift_fresh_copy.default: lambda x: x,
    aten._to_copy.default: _to_copy,
    aten.full.default: lambda size, value, **kw: _factory(mx.full)(size, value, **kw),
    aten.zeros.default: _factory(mx.zeros),
    aten.ones.default: _factory(mx.ones),
    aten.empty.memory_format: _factory(mx.zeros),
    aten.scalar_tensor.default: lambda v, dtype=None, **_: mx.array(
        v, dtype=mx_dtype(dtype or torch.float32)
    ),
    aten.arange.default: _arange,
    aten.arange.start: _arange,
    aten.arange.start_step: _arange,
    aten.cumsum.default: lambda x, dim, dtype=None: mx.cumsum(x, axis=dim),
    aten.sym_size.int: lambda x, d: x.shape[d],
}
