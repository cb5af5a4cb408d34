"""Test helper: the verdict on each kernel for a spec on a simulated musa device, every package assumed."""

from __future__ import annotations

from typing import Any

from anyaccel import context
from anyaccel.dispatch import resolve
from anyaccel.env import override


def verdicts(op: str, spec: Any, arch: str) -> dict[str, str]:
    """{kernel name: "selected" | "lower rank" | rejection reason} on simulated musa:<arch>."""
    env = {
        "ANYACCEL_SIMULATE": f"musa:{arch}",
        "ANYACCEL_SIMULATE_WITH": "all",
        "ANYACCEL_PLUGINS": "anyaccel-musa",
        "ANYACCEL_EMULATE": None,
        "ANYACCEL_KERNELS": None,
    }
    with override(env):
        res = resolve(op, spec, context.get().platform)
        return {c.kernel.name: c.reason for c in res.candidates}


def selected(reason: str) -> bool:
    """ "selected", with "(<package>: assumed installed)" when planning with packages that are absent."""
    return reason.split(" (", 1)[0] == "selected"
