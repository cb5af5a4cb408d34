"""Binding anyaccel ops from layers, keeping each resolution so `anyaccel run` can show the kernel table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

import anyaccel


def bind(owner: nn.Module, op: str, spec: Any) -> Callable[..., Any]:
    """The kernel for (op, spec), selected now; the resolution is kept on `owner` (not per call)."""
    resolution = anyaccel.resolve(op, spec)
    fn = resolution.fn
    record(owner, resolution)
    return fn


def record(owner: nn.Module, resolution: anyaccel.Resolution) -> None:
    """Keep `resolution` on `owner` for the kernel table (kernels bound elsewhere, e.g. by a scheme)."""
    vars(owner).setdefault("resolutions", []).append(resolution)


def resolutions(model: nn.Module) -> Iterator[anyaccel.Resolution]:
    """Every resolution the model's layers made, once per distinct (op, kernel, spec)."""
    seen = set()
    for module in model.modules():
        scheme = vars(module).get("scheme")
        for res in (*vars(module).get("resolutions", ()), *getattr(scheme, "resolutions", ())):
            key = (res.op, res.selected.name if res.selected else None, res.spec)
            if key not in seen:
                seen.add(key)
                yield res
