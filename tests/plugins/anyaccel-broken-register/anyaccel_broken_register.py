"""anyaccel-broken-register: a plugin whose kernel registration hook raises. anyaccel must list it as failed
and keep every other plugin's kernels."""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    raise KeyError("kernel table for this driver is missing")
