"""The dispatch-overhead benchmark: a bound op against a direct call of the very function it selected, on a
tiny tensor where any per-call work would show. Rounds interleave the two (alternating which goes first) so
that clock and cache drift hit both alike; the ratio of medians is the overhead (goal <= 1.05)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from anyaccel import context
from anyaccel.dispatch import instantiate, resolve
from anyaccel.ops.common import preferred_dtype
from anyaccel.ops.norm import NormSpec

GOAL = 1.05


@dataclass
class OverheadResult:
    op: str
    kernel: str
    bound_ns: float
    direct_ns: float
    ratio: float
    calls_per_round: int
    rounds: int
    goal: float = GOAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _per_call_ns(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def measure_overhead(calls: int = 2000, rounds: int = 15) -> OverheadResult:
    """norm.rms_norm on a [1, 64] tensor: `anyaccel.bind(...)` versus the selected kernel's own function."""
    platform = context.get().platform
    if platform.simulated:
        raise ValueError("the overhead benchmark runs kernels and cannot use a simulated platform")
    spec = NormSpec(preferred_dtype(platform), 64)
    res = resolve("norm.rms_norm", spec)
    bound = res.fn
    direct = instantiate(res.selected, spec, platform) if res.selected else bound
    x = torch.randn(1, 64).to(device=platform.torch_device_type, dtype=spec.dtype)
    w = torch.ones(64, device=platform.torch_device_type, dtype=spec.dtype)
    call_bound, call_direct = (lambda: bound(x, w, 1e-6)), (lambda: direct(x, w, 1e-6))
    _per_call_ns(call_bound, calls)  # warm-up
    _per_call_ns(call_direct, calls)
    bound_ns, direct_ns = [], []
    for i in range(rounds):
        if i % 2:
            direct_ns.append(_per_call_ns(call_direct, calls))
            bound_ns.append(_per_call_ns(call_bound, calls))
        else:
            bound_ns.append(_per_call_ns(call_bound, calls))
            direct_ns.append(_per_call_ns(call_direct, calls))
    b, d = statistics.median(bound_ns), statistics.median(direct_ns)
    return OverheadResult(
        "norm.rms_norm", res.selected.name if res.selected else "-", b, d, b / d, calls, rounds
    )
