"""The plugin system with real, installed plugin distributions (tests/plugins/*, installed by `make install`):
a plugin that adds a platform and a winning kernel, and broken plugins that must be isolated and reported."""

from __future__ import annotations

import importlib.metadata as md

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.errors import StrictModeError
from anyaccel.ops.norm import NormSpec
from anyaccel.registry import ANY

BROKEN = {
    "anyaccel-broken-import": (
        "failed",
        "import: RuntimeError: libtestvendor.so: cannot open shared object file",
    ),
    "anyaccel-broken-register": (
        "failed",
        "registration: KeyError: 'kernel table for this driver is missing'",
    ),
    "anyaccel-broken-probe": ("failed", "detecting brokenprobe: OSError: driver handshake failed"),
    "anyaccel-incompatible": ("incompatible", "supports plugin API >=2,<3, this anyaccel implements 1.0"),
}


def plugin_status() -> dict[str, tuple[str, str]]:
    ctx = context.get()
    _ = ctx.platform  # detection runs the plugins' probes, which can fail them
    return {i.name: (i.status, i.reason) for i in ctx.plugins.infos if not i.builtin}


def test_plugins_are_installed_distributions_with_entry_points(test_plugins):
    eps = {ep.name: ep.value for ep in md.entry_points(group="anyaccel.plugins")}
    assert eps["testchip"] == "anyaccel_testchip"
    assert md.version("anyaccel-testchip") == "0.1.0"


def test_testchip_registers_a_platform_and_a_winning_kernel(test_plugins, monkeypatch):
    import anyaccel_testchip

    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    platform = anyaccel.get_platform()
    assert (platform.name, platform.capability.name, platform.simulated) == ("testchip", "tc_2", False)
    res = anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64))
    assert res.selected.name == "testchip.rms_norm"
    assert [c.kernel.name for c in res.candidates][-1] == "reference.rms_norm"
    rms_norm = res.fn
    assert rms_norm is anyaccel_testchip.rms_norm  # the bound callable is the kernel itself
    x, w = torch.randn(3, 64), torch.randn(64)
    expected = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)) * w
    torch.testing.assert_close(rms_norm(x, w, 1e-6), expected)


def test_testchip_is_not_detected_unless_chosen(test_plugins):
    assert anyaccel.get_platform().name == "cpu"
    selected = anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64)).selected
    assert selected.provider != "testchip" and "cpu" in selected.platforms | {ANY}


def test_broken_plugins_are_isolated_and_reported(test_plugins):
    status = plugin_status()
    for name, (state, reason) in BROKEN.items():
        assert status[name] == (state, reason), name
    assert status["anyaccel-testchip"] == ("active", "")
    assert anyaccel.get_platform().name == "cpu"
    assert context.get().detection.probe_errors == {"brokenprobe": "OSError: driver handshake failed"}
    # the kernels of a plugin that failed detection drop out of every resolution
    names = [c.kernel.name for c in anyaccel.resolve("norm.rms_norm").candidates]
    assert "brokenprobe.rms_norm" not in names and "reference.rms_norm" in names


def test_exception_reason_is_type_and_first_line_only(test_plugins):
    reason = plugin_status()["anyaccel-broken-import"][1]
    assert "second line" not in reason and "\n" not in reason


def test_available_hook_deactivates_with_its_reason(test_plugins, monkeypatch):
    assert plugin_status()["anyaccel-wrongkernel"] == (
        "inactive",
        "set ANYACCEL_TEST_WRONG=1 to activate this deliberately wrong kernel",
    )
    assert "wrongkernel.rms_norm" not in context.get().kernel_owner
    monkeypatch.setenv("ANYACCEL_TEST_WRONG", "1")
    anyaccel.reset()
    assert plugin_status()["anyaccel-wrongkernel"] == ("active", "")
    assert (
        anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64)).selected.name == "wrongkernel.rms_norm"
    )


@pytest.mark.parametrize(
    "allow", ["anyaccel-testchip", "testchip", " anyaccel-testchip , nothing-installed "]
)
def test_allowlist_by_distribution_or_entry_point_name(test_plugins, monkeypatch, allow):
    monkeypatch.setenv("ANYACCEL_PLUGINS", allow)
    assert list(plugin_status()) == ["anyaccel-testchip"]


def test_allowlist_none_keeps_only_the_builtins(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")
    assert plugin_status() == {}
    builtins = [i.name for i in context.get().plugins.infos]
    assert builtins == [
        "anyaccel.platforms.builtin",
        "anyaccel.providers.reference",
        "anyaccel.providers.triton",
    ]
    assert "testchip" not in context.get().families


@pytest.mark.parametrize("plugin", ["anyaccel-broken-import", "anyaccel-broken-register"])
def test_strict_turns_load_failures_into_errors(test_plugins, monkeypatch, plugin):
    monkeypatch.setenv("ANYACCEL_PLUGINS", plugin)
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    with pytest.raises(StrictModeError, match=f"plugin {plugin} failed"):
        anyaccel.get_platform()


def test_strict_turns_detection_failures_into_errors(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLUGINS", "anyaccel-broken-probe")
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    with pytest.raises(
        StrictModeError, match="anyaccel-broken-probe failed during detecting brokenprobe: OSError"
    ):
        anyaccel.get_platform()


def test_strict_accepts_an_incompatible_plugin_it_never_loads(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLUGINS", "anyaccel-incompatible,anyaccel-testchip")
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    assert plugin_status()["anyaccel-incompatible"][0] == "incompatible"
