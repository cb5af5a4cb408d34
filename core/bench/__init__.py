"""The benchmark harness behind `anyaccel bench`: kernel timings over per-op shape sweeps, the dispatch
overhead of a bound call, and the start-up cost of `anyaccel info`."""

from .kernels import KernelTiming, bench_ops
from .overhead import OverheadResult, measure_overhead
from .startup import StartupResult, measure_startup

__all__ = [
    "KernelTiming",
    "OverheadResult",
    "StartupResult",
    "bench_ops",
    "measure_overhead",
    "measure_startup",
]
