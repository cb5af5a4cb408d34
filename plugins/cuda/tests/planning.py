"""Test helpers: the verdict on one kernel for a spec on a simulated cuda device, every package assumed."""

from __future__ import annotations

from typing import Any

from anyaccel import context
from anyaccel.dispatch import resolve
from anyaccel.env import override


def verdicts(op: str, spec: Any, capability: str) -> dict[str, str]:
    """{kernel name: "selected" | "lower rank" | rejection reason} on simulated cuda:<capability>."""
    env = {
        "ANYACCEL_SIMULATE": f"cuda:{capability}",
        "ANYACCEL_SIMULATE_WITH": "all",
        "ANYACCEL_PLUGINS": "anyaccel-cuda",
        "ANYACCEL_EMULATE": None,
        "ANYACCEL_KERNELS": None,
    }
    with override(env):
        res = resolve(op, spec, context.get().platform)
        return {c.kernel.name: c.reason for c in res.candidates}


def accepted(reason: str) -> bool:
    return reason.startswith("selected") or reason == "lower rank"
