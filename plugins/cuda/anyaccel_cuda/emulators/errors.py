"""Argument checks shared by the emulators: the vendor's kind of error with the vendor's wording."""

from __future__ import annotations

from typing import Any


def require(cond: bool, message: str, error: type[Exception] = ValueError) -> None:
    if not cond:
        raise error(message)


def not_emulated(api: str, **given: tuple[Any, Any]) -> None:
    """Raise NotImplementedError for an argument the vendor accepts but the emulator does not implement,
    when it is passed with a value other than its default. given: name -> (value, default)."""
    for name, (value, default) in given.items():
        changed = value is not None if default is None else bool(value != default)
        if changed:
            raise NotImplementedError(f"{api}: argument {name}={value!r} is not emulated")
