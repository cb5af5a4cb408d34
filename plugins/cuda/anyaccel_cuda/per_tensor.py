"""Values derived once per tensor object from per-layer constants (fp8 scales, expert maps), which the
contract guarantees never change: the conversion (a host read, a fused scale, a lookup table) runs on the
first call with a tensor, never per call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch

T = TypeVar("T")


class PerTensor(Generic[T]):
    """make(tensor) computed on the first call with that tensor and reused after. The tensor is kept alive,
    so its id is never reused for another one."""

    def __init__(self, make: Callable[[torch.Tensor], T]) -> None:
        self._make = make
        self._seen: dict[int, tuple[torch.Tensor, T]] = {}

    def __call__(self, tensor: torch.Tensor) -> T:
        hit = self._seen.get(id(tensor))
        if hit is None:
            hit = self._seen[id(tensor)] = (tensor, self._make(tensor))
        return hit[1]
