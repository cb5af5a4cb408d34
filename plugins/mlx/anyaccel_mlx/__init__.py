"""anyaccel-mlx: Apple MLX kernels for the anyaccel op contracts.

The hooks below are cheap and import no MLX: availability is read from package metadata, kernel records are
data with lazy "module:function" targets, and the platform family imports MLX only on Darwin/arm64.
"""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl
from anyaccel.platforms.base import PlatformFamily
from anyaccel.registry import Kernel

from .available import mlx_missing

ANYACCEL_PLUGIN_API = ">=1,<2"
ANYACCEL_PROVIDERS = ("mlx",)  # kernels named mlx.* are this plugin's alone


@hookimpl
def anyaccel_available() -> str | None:
    return mlx_missing()


@hookimpl
def anyaccel_platforms() -> list[PlatformFamily]:
    from .platform import FAMILY

    return [FAMILY]


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    from .kernels import KERNELS

    return list(KERNELS)
