"""Shared fixtures: a clean anyaccel context per test, the side directory of test-only plugins, and tiny
checkpoints built once per test process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import anyaccel

pytest_plugins = ["pytester"]  # the conformance kit's pytest plugin is tested in a child pytest

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


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """tiny_checkpoints(architecture, **overrides) -> the directory of testing.tiny_checkpoint(architecture,
    seed=0, **overrides), float32, built once per test process. Shared: read it, never write into it."""
    from anyaccel.models.testing import tiny_checkpoint

    root, made = tmp_path_factory.mktemp("tiny-checkpoints"), {}

    def checkpoint(architecture: str, **overrides) -> Path:
        key = (architecture, repr(sorted(overrides.items())))
        if key not in made:
            made[key] = tiny_checkpoint(architecture, root / str(len(made)), **overrides)
        return made[key]

    return checkpoint
