"""A conformance case: one spec, deterministic inputs, an independent oracle, and a tolerance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

Inputs = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class Tolerance:
    """Elementwise pass rule |out - expected| <= atol + rtol * |expected| (as torch.allclose)."""

    atol: float
    rtol: float


class Comparison(NamedTuple):
    """One output against the oracle: within tolerance, max abs and max relative error, and on failure a
    `sample` of the worst elements (`[i, j] got x, expected y`) for the message."""

    ok: bool
    max_abs: float
    max_rel: float
    sample: str = ""


@dataclass
class Case:
    """op:       op name
    id:       readable parameters ("T=37 Hq=8 Hkv=1 D=128 bf16")
    spec:     the bind-time spec a kernel is resolved with (kernels that reject it skip the case)
    make:     seed -> (args, kwargs) on the CPU; the runner moves tensors to the kernel's device
    oracle:   independent implementation with the op's signature (naive loops, float64), run on the CPU
    tolerance: per output name, or one for all ("*")
    compare:  optional custom comparison (outputs, expected) -> {name: (ok, max_abs, max_rel)}
    large:    long sequences or big matrices; skipped where kernels run emulated (interpreter, CPU builds)
    world_size: > 1 for comm ops: the kit spawns that many processes (reused across cases). Then `make(seed)`
              returns a list with every rank's (args, kwargs), `oracle(*per_rank)` returns every rank's
              expected outputs, and `make` must be picklable (see conformance/distributed.py)
    """

    op: str
    id: str
    spec: Any
    make: Callable[[int], Inputs]
    oracle: Callable[..., Any]
    tolerance: dict[str, Tolerance]
    compare: Callable[[dict[str, Any], dict[str, Any]], dict[str, Comparison]] | None = None
    large: bool = False
    world_size: int = 1
    seed: int = 0

    def tol(self, name: str) -> Tolerance:
        return self.tolerance.get(name) or self.tolerance["*"]

    def compare_outputs(self, got: dict[str, Any], want: dict[str, Any]) -> dict[str, Comparison]:
        """{output name: (within tolerance, max abs err, max rel err)}, by the case's own rule if any."""
        from .compare import compare_all

        return self.compare(got, want) if self.compare else compare_all(got, want, self.tol)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(
    g: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32, scale: float = 1.0
) -> torch.Tensor:
    return (torch.randn(*shape, generator=g) * scale).to(dtype)
