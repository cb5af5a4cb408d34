"""Timing every kernel that can run here over each op's sweep, with effective bandwidth, FLOP/s and the
speed-up over the torch reference."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from anyaccel import context
from anyaccel.conformance.compare import outputs
from anyaccel.conformance.runner import kernels_to_check, to_device, with_prepared_weights
from anyaccel.conformance.selection import Selection
from anyaccel.dispatch import instantiate, reject_reason
from anyaccel.ops.common import preferred_dtype
from anyaccel.platforms.base import Platform
from anyaccel.registry import REFERENCE_PROVIDER, Kernel

from .sweeps import Point, points
from .timing import median_seconds, synchronizer


@dataclass
class KernelTiming:
    """One kernel at one sweep point. bytes: tensors read (arguments) plus tensors written (results and
    in-place arguments), so gb_per_s is an effective bandwidth. speedup_vs_reference: the reference's
    median time over this kernel's (1.0 for the reference itself; None when the reference did not run)."""

    op: str
    shape: str
    kernel: str
    provider: str
    median_us: float | None
    bytes: int
    gb_per_s: float | None
    tflop_per_s: float | None
    speedup_vs_reference: float | None = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _tensor_bytes(values: Iterable[Any]) -> int:
    total = 0
    for v in values:
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, (list, tuple)):
            total += _tensor_bytes(v)
    return total


def _time_kernel(kernel: Kernel, point: Point, platform: Platform) -> KernelTiming:
    opdef = context.get().op(point.op)
    args, kwargs = to_device(point.make(0), platform.torch_device_type)
    sync = synchronizer(platform.torch_device_type)
    try:
        fn = instantiate(kernel, point.spec, platform)
        if kernel.prepare is not None:  # load-time conversions are not part of a call
            args, kwargs = with_prepared_weights(opdef, kernel, point.spec, args, kwargs)
        produced = outputs(opdef, args, kwargs, fn(*args, **kwargs))
        seconds = median_seconds(lambda: fn(*args, **kwargs), sync)
    except Exception as exc:  # one failing kernel is reported, the sweep goes on
        return KernelTiming(
            point.op,
            point.label,
            kernel.name,
            kernel.provider,
            None,
            0,
            None,
            None,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )
    moved = _tensor_bytes(list(args) + list(kwargs.values()) + list(produced.values()))
    flops = point.flops(args, produced) if point.flops else None
    return KernelTiming(
        point.op,
        point.label,
        kernel.name,
        kernel.provider,
        seconds * 1e6,
        moved,
        moved / seconds / 1e9,
        flops / seconds / 1e12 if flops else None,
    )


def bench_ops(
    op: str | None = None, progress: Callable[[list[str]], Iterable[str]] = iter
) -> list[KernelTiming]:
    """Every op (or `op`) over its sweep, every kernel that can run on this platform and accepts the spec."""
    ctx = context.get()
    platform = ctx.platform
    if platform.simulated:
        raise ValueError("anyaccel bench runs kernels and cannot use a simulated platform")
    dtype = preferred_dtype(platform)
    timings: list[KernelTiming] = []
    for name in progress([ctx.op(op).name] if op else sorted(ctx.ops)):
        kernels = [k for k, device in kernels_to_check(Selection(op=name), platform)]
        for point in points(name, dtype):
            row = []
            for kernel in kernels:
                if reject_reason(kernel, point.spec, platform, False, context.get().assumed) is None:
                    row.append(_time_kernel(kernel, point, platform))
            reference_us = next((t.median_us for t in row if t.provider == REFERENCE_PROVIDER), None)
            for t in row:
                if reference_us and t.median_us:
                    t.speedup_vs_reference = reference_us / t.median_us
            timings.extend(row)
    return timings
