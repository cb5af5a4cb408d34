"""Helpers for kernels that prepare values once per forward (plan) or once per constant tensor.

`Planned(derive)` computes derive(*tensors) in `plan(*tensors)` (called from a bound kernel's
`anyaccel_plan`, once per batch) and returns that value to every call made with those very tensors; a call
with other tensors (a direct call, the conformance kit) derives the value itself, so the kernel is correct
either way.
`Converted(convert)` keeps convert(t) for the last tensor t it saw (sinks in another dtype, a rope cache in
the model's dtype): a per-layer constant is converted once, not per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Planned:
    def __init__(self, derive: Callable[..., Any]) -> None:
        self._derive = derive
        self._keys: tuple[Any, ...] = ()
        self._value: Any = None

    def plan(self, *keys: Any) -> Any:
        self._keys, self._value = keys, self._derive(*keys)
        return self._value

    def __call__(self, *keys: Any) -> Any:
        if len(keys) == len(self._keys) and all(a is b for a, b in zip(keys, self._keys, strict=True)):
            return self._value
        return self._derive(*keys)


class Converted:
    def __init__(self, convert: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._convert = convert
        self._source: torch.Tensor | None = None
        self._value: torch.Tensor | None = None

    def __call__(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        if t is not self._source:
            self._source, self._value = t, self._convert(t)
        return self._value
