"""anyaccel_available() never returns; with ANYACCEL_TEST_HOSTILE=probe it returns, and the probe of its
platform family never does."""

import os
import threading

from anyaccel.hookspecs import hookimpl
from anyaccel.platforms.base import PlatformFamily, ranked_table

ANYACCEL_PLUGIN_API = ">=1,<2"
_FOREVER = threading.Event()  # never set


def probe():
    _FOREVER.wait()


FAMILY = PlatformFamily(
    "hangchip", probe, ranked_table("hangchip", {"h1": 1}, ("h1",)), lambda *a, **k: None, ("h1",)
)


@hookimpl
def anyaccel_available() -> str | None:
    mode = os.environ.get("ANYACCEL_TEST_HOSTILE")
    if mode == "1":
        _FOREVER.wait()
    return (
        None if mode == "probe" else "set ANYACCEL_TEST_HOSTILE=1 (or =probe) to activate this hanging plugin"
    )


@hookimpl
def anyaccel_platforms() -> list[PlatformFamily]:
    return [FAMILY]
