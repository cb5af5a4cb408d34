"""The built-in platform families, registered through the same hook a vendor plugin uses."""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl

from . import cpu, cuda, mps, musa, npu, rocm, xpu
from .base import PlatformFamily

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_platforms() -> list[PlatformFamily]:
    return [cpu.FAMILY, cuda.FAMILY, rocm.FAMILY, npu.FAMILY, xpu.FAMILY, mps.FAMILY, musa.FAMILY]
