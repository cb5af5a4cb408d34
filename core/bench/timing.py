"""Timing on any device: the platform's own synchronize (found through torch by device type, so no vendor
is named here), warm-up, a per-sample call count sized to the timer's resolution, and the median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronizer(device_type: str) -> Callable[[], None]:
    """Waits for queued device work: torch.<device module>.synchronize, or nothing on the CPU."""
    if device_type == "cpu":
        return lambda: None
    return torch.get_device_module(device_type).synchronize


def median_seconds(
    fn: Callable[[], object],
    sync: Callable[[], None],
    *,
    warmup: int = 3,
    repeats: int = 15,
    min_sample_s: float = 1e-3,
    budget_s: float = 0.3,
) -> float:
    """Median seconds per call of `fn`. Each sample times enough back-to-back calls to last `min_sample_s`
    (tiny kernels are shorter than the timer's resolution and the launch jitter); the number of samples
    drops below `repeats` (to at least 3) when a slow kernel would exceed `budget_s`."""
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - start, 1e-9)
    calls = max(1, int(min_sample_s / once))
    samples = max(3, min(repeats, int(budget_s / (once * calls))))
    times = []
    for _ in range(samples):
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)
