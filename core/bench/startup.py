"""The start-up benchmark: what `anyaccel info` costs after `import torch` (importing anyaccel, plugin
discovery, platform detection, resolving every op), each run in a fresh interpreter with this process's
environment, so every installed plugin takes part. Goal: a median <= 150 ms."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

GOAL_MS = 150.0

_PROGRAM = """
import json, time
import torch
t0 = time.perf_counter()
import anyaccel
from anyaccel import context
from anyaccel.cli.info import report
t1 = time.perf_counter()
context.get().platform
t2 = time.perf_counter()
report()
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "plugins_and_detection_ms": (t2 - t1) * 1e3,
                  "resolve_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t0) * 1e3}))
"""


@dataclass
class StartupResult:
    """Medians over `runs` fresh interpreters, in milliseconds; runs_ms lists every run's total."""

    total_ms: float
    import_ms: float
    plugins_and_detection_ms: float
    resolve_ms: float
    runs_ms: list[float]
    goal_ms: float = GOAL_MS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _one_run() -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"start-up benchmark run failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_startup(runs: int = 5) -> StartupResult:
    results = [_one_run() for _ in range(runs)]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    return StartupResult(
        median("total_ms"),
        median("import_ms"),
        median("plugins_and_detection_ms"),
        median("resolve_ms"),
        [round(r["total_ms"], 1) for r in results],
    )
