"""Shared fixtures: a clean anyaccel context per test, and the side directory of test-only plugins."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import anyaccel

ROOT = Path(__file__).resolve().parents[1]
TEST_PLUGIN_SITE = ROOT / ".venv" / "test-plugins"


@pytest.fixture(autouse=True)
def clean_anyaccel(anyaccel_clean_env):
    """Every test starts from the environment with no ANYACCEL_* overrides and rebuilt state (the fixture
    comes from the conformance kit's pytest plugin)."""


@pytest.fixture
def test_plugins(monkeypatch):
    """Put the test-only plugin distributions (installed by `make install`) on sys.path."""
    if not TEST_PLUGIN_SITE.is_dir():
        pytest.fail(f"{TEST_PLUGIN_SITE} is missing: run `make install`")
    monkeypatch.syspath_prepend(str(TEST_PLUGIN_SITE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TEST_PLUGIN_SITE), *sys.path]))
    anyaccel.reset()
    return TEST_PLUGIN_SITE
