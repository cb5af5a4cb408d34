"""anyaccel-cpu: CPU kernels for the anyaccel op contracts.

The hooks import nothing beyond anyaccel: kernel records are data with lazy "module:function" targets, and
whether this torch build has oneDNN is asked only when a kernel that needs it is considered.
"""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"
ANYACCEL_PROVIDERS = ("cpu",)  # kernels named cpu.* are this plugin's alone


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    from .kernels import KERNELS

    return list(KERNELS)
