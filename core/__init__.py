"""anyaccel: hardware abstraction for LLM inference.

    import anyaccel
    rms_norm = anyaccel.bind("norm.rms_norm", anyaccel.ops.norm.NormSpec(torch.bfloat16, 4096))
    y = rms_norm(x, weight, 1e-6)           # the selected kernel itself: no lookup per call

Importing anyaccel imports no vendor package: plugins and platforms load on first use.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import ops
from .context import get as _context
from .context import reset
from .dispatch import Resolution, bind, resolve
from .errors import AnyaccelError, PlatformError, ResolutionError, SimulatedPlatformError, StrictModeError
from .registry import Kernel

try:
    __version__ = version("anyaccel")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def get_platform():
    """The platform anyaccel runs on (detected once; see ANYACCEL_PLATFORM / ANYACCEL_SIMULATE)."""
    return _context().platform


__all__ = [
    "AnyaccelError",
    "Kernel",
    "PlatformError",
    "Resolution",
    "ResolutionError",
    "SimulatedPlatformError",
    "StrictModeError",
    "__version__",
    "bind",
    "get_platform",
    "ops",
    "reset",
    "resolve",
]
