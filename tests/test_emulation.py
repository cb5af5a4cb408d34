"""Emulated platforms (ANYACCEL_EMULATE / --emulate) and planning with packages (--simulate X --with PKGS).

The test plugin anyaccel-testchip ships an emulator of its made-up vendor library `testchip_runtime` and a
kernel that calls it (testchip.rt_rms_norm, requiring the distribution testchip-runtime)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.cli.main import main
from anyaccel.models.testing import tiny_checkpoint
from anyaccel.ops.norm import NormSpec

EMULATE = "testchip:tc_2"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_emulators_are_installed_only_in_emulation_mode(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    platform = anyaccel.get_platform()
    assert platform.name == "testchip" and not platform.emulated
    assert "testchip_runtime" not in sys.modules
    res = anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64))
    rejected = next(c for c in res.candidates if c.kernel.name == "testchip.rt_rms_norm")
    assert rejected.reason == "needs package testchip-runtime (not installed)"

    monkeypatch.delenv("ANYACCEL_PLATFORM")
    monkeypatch.setenv("ANYACCEL_EMULATE", EMULATE)
    anyaccel.reset()
    platform = anyaccel.get_platform()
    runtime = sys.modules["testchip_runtime"]
    assert runtime.__name__ == "anyaccel_testchip.emulator"
    assert anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64)).fn(
        torch.ones(2, 64), torch.ones(64), 1e-6
    ).shape == (2, 64)
    assert "anyaccel_testchip.runtime_kernels" in sys.modules

    anyaccel.reset()  # the emulator, and every module of the plugin that imported it, go away
    assert "testchip_runtime" not in sys.modules
    assert "anyaccel_testchip.runtime_kernels" not in sys.modules
    assert "anyaccel_testchip.emulator" not in sys.modules


def test_an_emulated_platform_is_described_as_the_device_with_tensors_on_the_host(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "cuda:sm_100")
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")  # the built-ins offer no emulator
    p = anyaccel.get_platform()
    assert (p.name, p.capability.name, p.device_type, p.dist_backend, p.fp8_dtype) == (
        "cuda",
        "sm_100",
        "cuda",
        "nccl",
        "float8_e4m3fn",
    )
    assert p.emulated and not p.simulated
    assert (p.torch_device_type, p.torch_dist_backend) == ("cpu", "gloo")
    assert "no plugin offers an emulator" in p.notes[-1]


def test_the_emulated_kernel_is_selected_and_runs_through_the_emulator(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", EMULATE)
    res = anyaccel.resolve("norm.rms_norm", NormSpec(torch.bfloat16, 64))
    assert res.selected.name == "testchip.rt_rms_norm"
    chosen = next(c for c in res.candidates if c.accepted)
    assert chosen.reason == "selected (testchip-runtime: emulated by anyaccel-testchip)"
    assert res.to_json()["verified"] == "emulator"
    x, w = torch.randn(5, 64, dtype=torch.bfloat16), torch.randn(64, dtype=torch.bfloat16)
    xf = x.float()
    want = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).bfloat16() * w
    torch.testing.assert_close(res.fn(x, w, 1e-6), want)
    # the kernel's gate mirrors the emulated library's documented limit
    odd = anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 60))
    assert odd.selected.name == "testchip.rms_norm"
    assert "multiple of 8" in next(
        c.reason for c in odd.candidates if c.kernel.name == "testchip.rt_rms_norm"
    )


def test_the_emulator_checks_arguments_as_the_vendor_does(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", EMULATE)
    anyaccel.get_platform()
    import testchip_runtime as rt

    x, w = torch.randn(4, 64), torch.randn(64)
    with pytest.raises(rt.TestchipError, match="input dtype torch.float16"):
        rt.fused_rms_norm(x.half(), w.half(), 1e-6, out=torch.empty(4, 64, dtype=torch.float16))
    with pytest.raises(rt.TestchipError, match="out must be"):
        rt.fused_rms_norm(x, w, 1e-6, out=torch.empty(4, 32))
    with pytest.raises(TypeError, match="unexpected keyword argument 'eps'"):
        rt.fused_rms_norm(x, w, eps=1e-6, out=torch.empty(4, 64))  # type: ignore[call-arg]


def test_check_runs_a_plugin_on_its_emulated_platform(test_plugins, capsys):
    code, out, err = run(
        capsys, "check", "--provider", "testchip", "--op", "norm.rms_norm", "--emulate", EMULATE, "--json"
    )
    data = json.loads(out)
    assert code == 0, err
    by_name = {k["name"]: k for k in data["kernels"]}
    runtime = by_name["testchip.rt_rms_norm"]
    assert runtime["passed"] > 0 and runtime["failed"] == 0
    assert runtime["skip_reasons"] == {
        "dtype float16 not supported (has bfloat16, float32)": runtime["skipped"]
    }
    assert data["skip_reasons"] and sum(data["skip_reasons"].values()) == data["skipped"]
    assert "ANYACCEL_EMULATE" not in __import__("os").environ  # the option is scoped to the command


def test_a_whole_model_runs_on_the_emulated_platform(test_plugins, tmp_path, capsys):
    model = tiny_checkpoint("Qwen3ForCausalLM", tmp_path / "qwen3", hidden_size=64)
    code, out, err = run(
        capsys,
        *("run", "--model", str(model), "--emulate", EMULATE, "--json", "--compare-transformers"),
        *("--max-tokens", "3", "--prompt", "hello", "--dtype", "float32"),
    )
    data = json.loads(out)
    assert code == 0, err
    assert data["platform"]["name"] == "testchip" and data["platform"]["emulated"]
    kernels = {k["op"]: k["kernel"] for k in data["kernels"]}
    assert kernels["norm.rms_norm"] == "testchip.rt_rms_norm"
    assert data["compare_transformers"]["ok"] and data["compare_transformers"]["tokens_match"]


def test_planning_with_packages_selects_a_kernel_that_needs_them(test_plugins, capsys):
    spec = ("--set", "hidden_size=64")
    for packages, kernel, reason in (
        (None, "testchip.rms_norm", "selected"),
        ("testchip-runtime", "testchip.rt_rms_norm", "selected (testchip-runtime: assumed installed)"),
        ("all", "testchip.rt_rms_norm", "selected (testchip-runtime: assumed installed)"),
    ):
        extra = ("--with", packages) if packages else ()
        code, out, err = run(
            capsys, "explain", "norm.rms_norm", "--simulate", "testchip:tc_3", *extra, *spec, "--json"
        )
        data = json.loads(out)
        assert code == 0, err
        assert data["selected"] == kernel
        assert next(c for c in data["candidates"] if c["accepted"])["reason"] == reason
    info = json.loads(run(capsys, "info", "--simulate", "testchip:tc_3", "--with", "all", "--json")[1])
    assert info["assumed_packages"] == {"testchip-runtime": "assumed installed"}


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ANYACCEL_SIMULATE_WITH": "all"}, "needs ANYACCEL_SIMULATE"),
        ({"ANYACCEL_SIMULATE": "cuda:sm_90", "ANYACCEL_EMULATE": "cuda:sm_90"}, "are exclusive"),
        ({"ANYACCEL_EMULATE": "cuda:sm_7"}, "cannot emulate 'cuda:sm_7'"),
    ],
)
def test_bad_emulation_settings_are_clear_errors(monkeypatch, env, message):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises((ValueError, anyaccel.PlatformError), match=message):
        _ = context.get().platform
