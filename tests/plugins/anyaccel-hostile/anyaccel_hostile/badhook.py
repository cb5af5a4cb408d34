"""anyaccel_kernels returns [42] instead of kernel records."""

from anyaccel.hookspecs import hookimpl

from . import inactive

ANYACCEL_PLUGIN_API = ">=1,<2"


@hookimpl
def anyaccel_available() -> str | None:
    return inactive()


@hookimpl
def anyaccel_kernels():
    return [42]
