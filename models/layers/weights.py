"""WeightSlot: one checkpoint tensor and how this rank copies its part into a parameter.

Quantization schemes give every parameter they create a `ParamLayout` (`param.anyaccel_layout`): which dims
index output / input features, how many features one stored element covers (8 for packed int4, 128 for
128x128 block scales) and whether dim 0 holds one entry per merged shard (per-tensor scales). `layout_slot`
turns that into the checkpoint tensor's full shape and this rank's copy, so layers shard and merge any
scheme's parameters without knowing the scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from anyaccel.schemes import ParamLayout


@dataclass(frozen=True)
class WeightSlot:
    """name:  the tensor's name in the checkpoint
    shape: its full (unsharded) shape in the checkpoint; the loader rejects any other shape before reading
    load:  load(src) copies this rank's part; `src` is a lazy safetensors slice (indexing reads only the
           indexed part from disk). None: the tensor is not read here (experts of other ranks under expert
           parallelism, KV-cache scales of a cache that is not fp8); it is still checked for its shape.
    optional: the checkpoint may lack it (calibrated KV-cache scales); the parameter then keeps its value.
    """

    name: str
    shape: tuple[int, ...]
    load: Callable[[Any], None] | None
    optional: bool = False


@dataclass(frozen=True)
class Span:
    """Features [start, start + length) of `total` along one dim, stored at `offset` in the parameter."""

    total: int
    start: int = 0
    length: int | None = None  # None: all of `total`
    offset: int = 0

    @property
    def stop(self) -> int:
        return self.total if self.length is None else self.start + self.length


def sharded_copy(
    dst: torch.Tensor, dim: int | None = None, start: int = 0, length: int = 0
) -> Callable[[Any], None]:
    """A loader copying [start, start + length) along `dim` of the source into the first `length` entries of
    `dst` along the same dim (dim None: the whole source into the whole of dst)."""

    def load(src: Any) -> None:
        if dim is None:
            checked_copy(dst, src[...].reshape(dst.shape))
            return
        index = (slice(None),) * dim + (slice(start, start + length),)
        checked_copy(dst.narrow(dim, 0, length), src[index])

    return load


def checked_copy(dst: torch.Tensor, src: torch.Tensor) -> None:
    """dst.copy_(src), refusing integer or boolean values where dst holds floats: copy_ would cast them
    silently (the loader names the tensor)."""
    if dst.is_floating_point() and not src.is_floating_point():
        raise ValueError(f"holds {src.dtype} values where {dst.dtype} is expected")
    dst.copy_(src)


def _stored(name: str, span: Span, div: int) -> tuple[int, int, int, int]:
    """(full size, start, length, offset) of `span` in stored elements of `div` features each. A shard
    boundary inside one stored element (a 128x128 scale tile or an int4 word split across ranks or merged
    tensors) has no exact copy and is refused."""
    for edge in (span.start, span.offset) + ((span.stop,) if span.stop != span.total else ()):
        if edge % div:
            raise ValueError(
                f"{name}: features [{span.start}, {span.stop}) of {span.total} do not fall on whole stored "
                f"elements of {div} features (tensor-parallel shards and merged sizes must be multiples of "
                f"{div})"
            )
    full, start, stop = -(-span.total // div), span.start // div, -(-span.stop // div)
    return full, start, stop - start, span.offset // div


def layout_slot(
    name: str, dst: torch.Tensor, layout: ParamLayout, out: Span, inp: Span, shard: int = 0
) -> WeightSlot:
    """The slot filling `dst` (one parameter, or one expert's slice of it) from checkpoint tensor `name`:
    `out` / `inp` are this rank's features along the layout's output / input dims. A per-shard tensor
    (a per-tensor scale of merged q/k/v, a GPTQ g_idx of each part) is copied into dst[shard]."""
    if layout.per_shard:  # dim 0 indexes the merged shards: this one's entry is a scalar or a smaller layout
        if dst.dim() == 1:
            return WeightSlot(name, (), sharded_copy(dst[shard]))
        return layout_slot(name, dst[shard], replace(expert_layout(layout), per_shard=False), out, inp)
    shape, index, narrow = list(dst.shape), [slice(None)] * dst.dim(), []
    dims = ((layout.output_dim, out, layout.output_div), (layout.input_dim, inp, layout.input_div))
    for dim, span, div in dims:
        if dim is None:
            continue
        full, start, length, offset = _stored(name, span, div)
        shape[dim], index[dim] = full, slice(start, start + length)
        narrow.append((dim, offset, length))

    def load(src: Any) -> None:
        target = dst
        for dim, offset, length in narrow:
            target = target.narrow(dim, offset, length)
        checked_copy(target, src[tuple(index)] if index else src[...].reshape(target.shape))

    return WeightSlot(name, tuple(shape), load)


def scheme_params(layer: nn.Module) -> Iterator[tuple[str, torch.Tensor, ParamLayout]]:
    """(name, tensor, layout) of every parameter a quantization scheme registered directly on `layer`."""
    for name, param in layer.named_parameters(recurse=False):
        layout = getattr(param, "anyaccel_layout", None)
        if layout is not None:
            yield name, param.data, layout


def expert_layout(layout: ParamLayout) -> ParamLayout:
    """The layout of one entry of a parameter stacked on dim 0 (an expert, a merged shard): dim 0 dropped."""
    shift = {dim: None if dim is None else dim - 1 for dim in (layout.output_dim, layout.input_dim)}
    return replace(layout, output_dim=shift[layout.output_dim], input_dim=shift[layout.input_dim])


def whole(name: str, param: torch.Tensor) -> WeightSlot:
    """A replicated parameter filled from one checkpoint tensor of the same shape."""
    return WeightSlot(name, tuple(param.shape), sharded_copy(param.data))


def parent(prefix: str) -> str:
    """'model.layers.0.self_attn.qkv_proj' -> 'model.layers.0.self_attn.' (fused layers name their parts)."""
    head, dot, _ = prefix.rpartition(".")
    return head + dot


def model_slots(model: nn.Module) -> Iterator[WeightSlot]:
    """Every checkpoint tensor the model reads: the slots of each module that declares `weight_slots`."""
    for name, module in model.named_modules():
        slots = getattr(module, "weight_slots", None)
        if slots is not None:
            yield from slots(name)
