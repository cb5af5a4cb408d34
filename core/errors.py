"""Exceptions raised by anyaccel. Each message names the op, kernel, plugin or file concerned."""


class AnyaccelError(RuntimeError):
    """Base class for anyaccel's own errors."""


class PlatformError(AnyaccelError):
    """The platform could not be chosen (several accelerators, a forced platform missing, a bad name)."""


class ResolutionError(AnyaccelError):
    """No kernel can serve an op for the requested spec on this platform; the message lists every reason."""


class SimulatedPlatformError(AnyaccelError):
    """A kernel was called on a simulated platform, which exists for planning and explaining only."""


class AnyaccelWarning(UserWarning):
    """A setting that names something unknown (a kernel to forbid, a plugin to allow); anyaccel goes on."""


class StrictModeError(AnyaccelError):
    """ANYACCEL_STRICT=1 turned a recorded failure or a reference fallback into an error."""
