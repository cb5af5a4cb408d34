"""anyaccel-incompatible: a plugin written for a future plugin API. anyaccel must mark it incompatible and
never call its hooks."""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl

ANYACCEL_PLUGIN_API = ">=2,<3"


@hookimpl
def anyaccel_kernels() -> list:
    raise AssertionError("an incompatible plugin's hooks must not be called")
