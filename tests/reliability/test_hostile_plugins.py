"""Plugins that misbehave are isolated like one that raises: an intruder registering another provider's
kernel names, a plugin calling sys.exit while imported, a hook returning the wrong type, and an availability
check or a platform probe that never returns (ANYACCEL_PROBE_TIMEOUT). Test plugins: tests/plugins/
anyaccel-hostile (active with ANYACCEL_TEST_HOSTILE=1)."""

from __future__ import annotations

import time

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.errors import StrictModeError
from anyaccel.ops.norm import NormSpec


def _status(name: str) -> tuple[str, str]:
    info = next(i for i in context.get().plugins.infos if i.name == name)
    return info.status, info.reason


@pytest.fixture
def hostile(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_TEST_HOSTILE", "1")
    monkeypatch.setenv("ANYACCEL_PROBE_TIMEOUT", "0.5")
    anyaccel.reset()


def test_an_intruder_is_disabled_and_the_owner_keeps_its_kernels(hostile):
    status, reason = _status("anyaccel-hostile:aaa_intruder")
    assert status == "failed"
    assert "registers kernel cpu.native_rms_norm under provider cpu, which anyaccel-cpu owns" in reason
    assert _status("anyaccel-cpu") == ("active", "")
    ctx = context.get()
    assert ctx.kernel_owner["cpu.native_rms_norm"].name == "anyaccel-cpu"
    x = torch.randn(4, 64)
    out = anyaccel.bind("norm.rms_norm", NormSpec(torch.float32, 64))(x, torch.ones(64), 1e-6)
    assert out.abs().sum() > 0  # not the intruder's zeros


def test_exit_wrong_hook_types_and_hangs_fail_only_their_plugin(hostile):
    start = time.monotonic()
    assert _status("anyaccel-hostile:hostile_exit") == ("failed", "import: SystemExit: 3")
    status, reason = _status("anyaccel-hostile:hostile_badhook")
    assert status == "failed" and "anyaccel_kernels() returned 42 (int), expected Kernel" in reason
    status, reason = _status("anyaccel-hostile:hostile_hang")
    assert status == "failed" and "did not return within 0.5 s (ANYACCEL_PROBE_TIMEOUT)" in reason
    assert time.monotonic() - start < 15
    assert anyaccel.get_platform().name == "cpu"
    assert _status("anyaccel-testchip") == ("active", "")


def test_a_hanging_probe_becomes_a_probe_error(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_TEST_HOSTILE", "probe")
    monkeypatch.setenv("ANYACCEL_PROBE_TIMEOUT", "0.5")
    anyaccel.reset()
    assert anyaccel.get_platform().name == "cpu"
    assert "probing hangchip did not return within 0.5 s" in context.get().detection.probe_errors["hangchip"]
    status, reason = _status("anyaccel-hostile:hostile_hang")
    assert status == "failed" and reason.startswith("detecting hangchip: TimeoutError")


def test_strict_mode_turns_hostility_into_an_error(hostile, monkeypatch):
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    monkeypatch.setenv("ANYACCEL_PLUGINS", "aaa_intruder,anyaccel-cpu")
    anyaccel.reset()
    with pytest.raises(StrictModeError, match="which anyaccel-cpu owns"):
        context.get()


def test_a_second_declaration_of_a_provider_fails_the_second_plugin(test_plugins, monkeypatch):
    import anyaccel_testchip

    monkeypatch.setattr(anyaccel_testchip, "ANYACCEL_PROVIDERS", ("testchip", "cpu"), raising=False)
    anyaccel.reset()
    status, reason = _status("anyaccel-testchip")
    assert status == "failed" and "declares provider cpu, which anyaccel-cpu declared first" in reason
    assert _status("anyaccel-cpu") == ("active", "")
