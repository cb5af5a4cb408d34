"""Each test starts from a clean anyaccel state with no ANYACCEL_* overrides (as the core suite does)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def clean_anyaccel(anyaccel_clean_env):
    """The conformance kit's pytest plugin provides the fixture."""
