"""anyaccel-broken-probe: a plugin adding a platform family ("brokenprobe") whose probe raises. Detection
must record the failure, mark the plugin failed, drop its kernels and still pick a platform."""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl
from anyaccel.platforms.base import Capability, Platform, PlatformFamily, ranked_table
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"

EXAMPLES = ("bp_1",)
parse_capability = ranked_table("brokenprobe", {"bp_1": 1}, EXAMPLES)


def probe() -> Platform | None:
    raise OSError("driver handshake failed")


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    return Platform(
        name="brokenprobe",
        vendor="anyaccel-tests",
        device_type="cpu",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="CPU",
        dist_backend="gloo",
        fp8_dtype=None,
        dtypes=("float32",),
        triton=False,
        simulated=simulated,
    )


def rms_norm(x, weight, eps):
    """Never selectable: the plugin fails at detection, which drops this kernel."""
    raise AssertionError("a kernel of a plugin that failed detection was called")


@hookimpl
def anyaccel_platforms() -> list[PlatformFamily]:
    return [PlatformFamily("brokenprobe", probe, parse_capability, describe, EXAMPLES)]


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return [
        Kernel(
            "norm.rms_norm", "brokenprobe.rms_norm", f"{__name__}:rms_norm", frozenset({"cpu"}), priority=50
        )
    ]
