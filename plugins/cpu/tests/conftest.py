"""Each test starts from a clean anyaccel state with no ANYACCEL_* overrides (as the core suite does)."""

from __future__ import annotations

import pytest

import anyaccel

ANYACCEL_VARS = (
    "ANYACCEL_PLATFORM",
    "ANYACCEL_PLUGINS",
    "ANYACCEL_KERNELS",
    "ANYACCEL_STRICT",
    "ANYACCEL_SIMULATE",
    "ANYACCEL_VALIDATE",
)


@pytest.fixture(autouse=True)
def clean_anyaccel(monkeypatch):
    for var in ANYACCEL_VARS:
        monkeypatch.delenv(var, raising=False)
    anyaccel.reset()
    yield
    anyaccel.reset()
