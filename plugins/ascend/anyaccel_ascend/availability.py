"""Whether the plugin can serve this process, decided without touching a device or importing torch_npu.

Kernel records are data, so the plugin is active whenever npu is the platform in question: torch_npu is
installed (its spec is found; it is not imported), or npu is named by ANYACCEL_PLATFORM, ANYACCEL_SIMULATE
(plans) or ANYACCEL_EMULATE (the torch_npu emulator). Anywhere else it is inactive, with the reason
`anyaccel info` shows.
"""

from __future__ import annotations

import importlib.util

from anyaccel.env import Settings

PLATFORM = "npu"


def unavailable_reason() -> str | None:
    if Settings.from_environ().asks_for(PLATFORM):
        return None
    if importlib.util.find_spec("torch_npu") is None:
        return (
            "no Ascend: torch_npu is not installed; --simulate npu:<soc> plans and --emulate npu:<soc> runs "
            "the kernels through the torch_npu emulator"
        )
    return None
