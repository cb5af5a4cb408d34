"""Whether the plugin can serve this process, decided without touching a device or importing torch_musa.

Kernel records are data, so the plugin is active whenever musa is the platform in question: torch_musa is
installed (its spec is found; it is not imported), or musa is named by ANYACCEL_PLATFORM, ANYACCEL_SIMULATE
(plans) or ANYACCEL_EMULATE (the emulators). Anywhere else it is inactive, with the reason `anyaccel info`
shows.
"""

from __future__ import annotations

import importlib.util

from anyaccel.env import Settings

PLATFORM = "musa"


def unavailable_reason() -> str | None:
    if Settings.from_environ().asks_for(PLATFORM):
        return None
    if importlib.util.find_spec("torch_musa") is None:
        return (
            "no Moore Threads GPU: torch_musa is not installed; --simulate musa:<mp_xx> plans and "
            "--emulate musa:<mp_xx> runs the kernels through the torch_musa and MATE emulators"
        )
    return None
