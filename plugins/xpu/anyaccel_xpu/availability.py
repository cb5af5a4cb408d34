"""Whether the plugin can serve this process, decided without touching a device or importing a vendor stack.

Kernel records are data, so the plugin is active whenever xpu is the platform in question: named by
ANYACCEL_PLATFORM, ANYACCEL_SIMULATE (plans) or ANYACCEL_EMULATE (the emulators), torch is an XPU build
(torch.version.xpu, plain data) or one of its stacks is installed (found by its spec, not imported).
Anywhere else it is inactive, with the reason `anyaccel info` shows.
"""

from __future__ import annotations

import importlib.util

from anyaccel.env import Settings

PLATFORM = "xpu"
STACKS = ("vllm_xpu_kernels", "intel_extension_for_pytorch")


def unavailable_reason() -> str | None:
    if Settings.from_environ().asks_for(PLATFORM):
        return None
    import torch

    if getattr(torch.version, "xpu", None):
        return None
    if any(importlib.util.find_spec(name) is not None for name in STACKS):
        return None
    return (
        "no Intel GPU stack: torch is not an XPU build and neither vllm-xpu-kernels nor IPEX is installed; "
        "--simulate xpu:<arch> plans and --emulate xpu:<arch> runs the kernels through the emulators"
    )
