"""The MUSA architecture the emulators stand for: the emulated platform's (ANYACCEL_EMULATE=musa:mp_31), as
torch_musa reports it from the device (major * 10 + minor)."""

from __future__ import annotations

from anyaccel.env import Settings
from anyaccel.platforms.musa import parse_capability


def arch() -> int:
    """31 for mp_31."""
    target = Settings.from_environ().emulate or ""
    family, _, name = target.partition(":")
    if family.strip().lower() != "musa":
        raise RuntimeError(
            f"MUSA emulators used outside an emulated musa platform (ANYACCEL_EMULATE={target!r})"
        )
    return parse_capability(name).rank


def require(cond: bool, message: str, error: type[Exception] = RuntimeError) -> None:
    if not cond:
        raise error(message)
