"""Calls into plugins that must not hang anyaccel: importing a plugin, its `anyaccel_available()` and its
platform probe run under a time budget (ANYACCEL_PROBE_TIMEOUT seconds, default 20).

A call that overruns raises TimeoutError, which the caller records as the plugin's failure; the call itself
keeps running in a daemon thread (Python cannot stop it), so it never holds up anyaccel or the process exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_SECONDS = 20.0


def call_with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """fn() if it returns within `seconds`; its exception (SystemExit included) if it raises; TimeoutError
    naming `what` if it does neither in time."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller, who decides what is fatal
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"anyaccel {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not return within {seconds:g} s (ANYACCEL_PROBE_TIMEOUT)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
