"""WeightSlot: one checkpoint tensor and how this rank copies its part into a parameter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class WeightSlot:
    """name:  the tensor's name in the checkpoint
    shape: its full (unsharded) shape in the checkpoint; the loader rejects any other shape before reading
    load:  load(src) copies this rank's part; `src` is a lazy safetensors slice (indexing reads only the
           indexed part from disk). None: the tensor belongs to other ranks (experts under expert
           parallelism); it must exist with this shape but is not read here.
    """

    name: str
    shape: tuple[int, ...]
    load: Callable[[Any], None] | None


def sharded_copy(
    dst: torch.Tensor, dim: int | None = None, start: int = 0, length: int = 0, dst_offset: int = 0
) -> Callable[[Any], None]:
    """A loader copying [start, start + length) along `dim` of the source into `dst` at `dst_offset` along the
    same dim (dim None: the whole source into the whole of dst)."""

    def load(src: Any) -> None:
        if dim is None:
            dst.copy_(src[:])
            return
        index = (slice(None),) * dim + (slice(start, start + length),)
        dst.narrow(dim, dst_offset, length).copy_(src[index])

    return load


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
