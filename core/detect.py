"""Choosing the platform: simulation, a forced name, or probing every family (cpu when nothing else)."""

from __future__ import annotations

from dataclasses import dataclass, field

from anyaccel.platforms.base import Platform, PlatformFamily

from .deadline import DEFAULT_SECONDS, call_with_deadline
from .errors import PlatformError


@dataclass
class Detection:
    platform: Platform
    found: list[Platform] = field(default_factory=list)  # every accelerator the probes reported
    probe_errors: dict[str, str] = field(default_factory=dict)  # family -> reason


def simulate(families: dict[str, PlatformFamily], text: str) -> Platform:
    """'cuda:sm_100' -> a simulated platform. A bad name or capability lists valid examples."""
    return _named(families, text, "simulate")


def emulate(families: dict[str, PlatformFamily], text: str) -> Platform:
    """'npu:ascend910b' -> an emulated platform (tensors on the host; see core/emulation.py)."""
    return _named(families, text, "emulate")


def _named(families: dict[str, PlatformFamily], text: str, how: str) -> Platform:
    name, colon, cap = text.partition(":")
    family = families.get(name.strip().lower())
    if family is not None and colon and not cap.strip():
        raise PlatformError(
            f"cannot {how} {text!r}: the capability after ':' is empty; e.g. {name}:{family.examples[0]} "
            f"(one of {', '.join(family.examples)})"
        )
    if family is None:
        raise PlatformError(f"cannot {how} {text!r}: unknown platform {name!r}; known: {', '.join(families)}")
    try:
        return getattr(family, how)(cap.strip() or None)
    except ValueError as exc:
        raise PlatformError(f"cannot {how} {text!r}: {exc}") from None


def detect(
    families: dict[str, PlatformFamily], forced: str | None, on_probe_error, timeout: float = DEFAULT_SECONDS
) -> Detection:
    """Probe families (all, or only the forced one), each within `timeout` seconds. `on_probe_error(family,
    exc)` records a failure (an exception, a SystemExit or a time-out) and returns normally unless strict mode
    turns it into an error."""
    if forced is not None:
        if forced not in families:
            raise PlatformError(
                f"ANYACCEL_PLATFORM={forced!r} is not a known platform; known: {', '.join(families)}"
            )
        candidates = {forced: families[forced]}
    else:
        candidates = {n: f for n, f in families.items() if n != "cpu"}
    found: list[Platform] = []
    errors: dict[str, str] = {}
    for name, family in candidates.items():
        try:
            platform = call_with_deadline(family.probe, timeout, f"probing {name}")
        except (Exception, SystemExit) as exc:  # a probe never takes anyaccel down: it becomes a reason
            errors[name] = on_probe_error(family, exc)
            continue
        if platform is not None:
            found.append(platform)
    if forced is not None and not found:
        why = errors.get(forced, "its probe found no device")
        raise PlatformError(f"ANYACCEL_PLATFORM={forced} but no {forced} device is usable: {why}")
    if len(found) > 1:
        names = ", ".join(f"{p.name} ({p.device_name})" for p in found)
        raise PlatformError(f"several accelerators detected: {names}; choose one with ANYACCEL_PLATFORM")
    if not found and "cpu" not in families:
        raise PlatformError("no platform family can describe this machine: the cpu family is not registered")
    platform = found[0] if found else families["cpu"].probe()
    assert platform is not None
    return Detection(platform, found, errors)
