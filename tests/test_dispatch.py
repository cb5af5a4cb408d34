"""Resolution and binding: ranking, the capability-range tie-break, ANYACCEL_KERNELS overrides, strict mode,
simulated platforms, rejection reasons and the zero-cost bound call."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.dispatch import rank, reject_reason
from anyaccel.errors import ResolutionError, SimulatedPlatformError, StrictModeError
from anyaccel.ops.activation import ActivationSpec
from anyaccel.ops.base import ContractError
from anyaccel.ops.norm import NormSpec
from anyaccel.platforms.base import CapabilityRange
from anyaccel.platforms.cuda import parse_capability as sm
from anyaccel.registry import Kernel

SILU = ActivationSpec(torch.float32, 32)
RMS = NormSpec(torch.float32, 64)


def kernel(name: str, *, priority: int = 0, capability=None, **kw) -> Kernel:
    return Kernel("norm.rms_norm", name, "m:f", frozenset({"cuda"}), capability, priority=priority, **kw)


def on_testchip(monkeypatch, capability: str = "tc_2") -> None:
    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    monkeypatch.setenv("ANYACCEL_TESTCHIP_CAPABILITY", capability)
    anyaccel.reset()


def reasons(res) -> dict[str, str]:
    return {c.kernel.name: c.reason for c in res.candidates}


def test_rank_priority_then_narrower_range_then_portable_then_reference():
    wide = kernel("vendor.wide", priority=1, capability=CapabilityRange(sm("sm_80"), sm("sm_121")))
    narrow = kernel("vendor.z_narrow", priority=1, capability=CapabilityRange(sm("sm_100"), sm("sm_103")))
    exact = kernel("vendor.y_exact", priority=1, capability=frozenset({sm("sm_100")}))
    anywhere = kernel("vendor.anywhere", priority=1)
    urgent = kernel("vendor.urgent", priority=9)
    portable = kernel("triton.norm", priority=99)
    reference = kernel("reference.norm", priority=99)
    ranked = rank([reference, portable, anywhere, wide, narrow, urgent, exact])
    assert [k.name for k in ranked] == [
        "vendor.urgent",
        "vendor.y_exact",
        "vendor.z_narrow",
        "vendor.wide",
        "vendor.anywhere",
        "triton.norm",
        "reference.norm",
    ]


def test_narrower_capability_range_wins_a_priority_tie(test_plugins, monkeypatch):
    on_testchip(monkeypatch, "tc_2")
    res = anyaccel.resolve("activation.silu_and_mul", SILU)
    assert res.selected.name == "testchip.silu_tc2"  # its name sorts after silu_generic: the range decides
    assert [(c.kernel.name, c.reason) for c in res.candidates if c.kernel.provider == "testchip"] == [
        ("testchip.silu_tc2", "selected"),
        ("testchip.silu_generic", "lower rank"),
    ]
    assert reasons(res)["reference.silu_and_mul"] == "lower rank"


def test_capability_outside_the_range_is_a_reason(test_plugins, monkeypatch):
    on_testchip(monkeypatch, "tc_1")
    res = anyaccel.resolve("activation.silu_and_mul", SILU)
    assert res.selected.name == "testchip.silu_generic"
    assert reasons(res)["testchip.silu_tc2"] == "needs testchip capability tc_2..tc_3; this device is tc_1"
    x = torch.randn(4, 64)
    torch.testing.assert_close(res.fn(x), torch.nn.functional.silu(x[:, :32]) * x[:, 32:])


def test_other_platforms_kernels_are_rejected_with_a_reason(test_plugins):
    res = anyaccel.resolve("norm.rms_norm", RMS)
    assert reasons(res)["testchip.rms_norm"] == "runs on testchip; this platform is cpu"
    assert res.selected.provider != "testchip"


def test_force_a_kernel(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_KERNELS", "activation.silu_and_mul=testchip.silu_generic")
    on_testchip(monkeypatch, "tc_3")
    res = anyaccel.resolve("activation.silu_and_mul", SILU)
    assert res.selected.name == "testchip.silu_generic"
    assert reasons(res)["testchip.silu_tc2"] == "ANYACCEL_KERNELS forces testchip.silu_generic"


def test_forbid_a_kernel(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_KERNELS", "norm.rms_norm=!testchip.rms_norm")
    on_testchip(monkeypatch)
    res = anyaccel.resolve("norm.rms_norm", RMS)
    assert res.selected.name == "reference.rms_norm"
    assert reasons(res)["testchip.rms_norm"] == "forbidden by ANYACCEL_KERNELS"


def test_forcing_a_kernel_that_cannot_run_here_explains_why(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_KERNELS", "norm.rms_norm=testchip.rms_norm")
    with pytest.raises(
        ResolutionError, match="forces testchip.rms_norm .* cannot run: runs on testchip; this"
    ):
        anyaccel.bind("norm.rms_norm", RMS)


def test_forcing_an_unknown_kernel_lists_the_registered_ones(monkeypatch):
    monkeypatch.setenv("ANYACCEL_KERNELS", "norm.rms_norm=cuda.rms_nrom")
    with pytest.raises(
        ResolutionError,
        match=r"forces cuda.rms_nrom for norm.rms_norm, which is not registered "
        r"\(.*reference.rms_norm",
    ):
        anyaccel.bind("norm.rms_norm", RMS)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("norm.rmsnorm=reference.rms_norm", "ANYACCEL_KERNELS names unknown op.* norm.rmsnorm; known ops:"),
        ("norm.rms_norm", "expected 'op=kernel' or 'op=!kernel'"),
        ("norm.rms_norm=a.x,norm.rms_norm=b.y", "forces two kernels for norm.rms_norm"),
    ],
)
def test_bad_overrides_are_errors(monkeypatch, value, message):
    monkeypatch.setenv("ANYACCEL_KERNELS", value)
    with pytest.raises(ValueError, match=message):
        anyaccel.resolve("norm.rms_norm", RMS)


def test_strict_forbids_reference_fallback_on_a_simulated_accelerator(monkeypatch):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "rocm:gfx950")
    # leave only the reference for this op, whatever portable kernels exist for it
    others = [k.name for k in context.get().kernels_for("norm.rms_norm") if k.provider != "reference"]
    monkeypatch.setenv("ANYACCEL_KERNELS", ",".join(f"norm.rms_norm=!{name}" for name in others))
    anyaccel.reset()
    assert anyaccel.resolve("norm.rms_norm", RMS).selected.name == "reference.rms_norm"
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    anyaccel.reset()
    with pytest.raises(StrictModeError, match="only the torch reference can serve .* on rocm"):
        anyaccel.resolve("norm.rms_norm", RMS)


def test_strict_allows_a_reference_forced_by_name(monkeypatch):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "rocm:gfx950")
    monkeypatch.setenv("ANYACCEL_KERNELS", "norm.rms_norm=reference.rms_norm")
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    anyaccel.reset()
    assert anyaccel.resolve("norm.rms_norm", RMS).selected.name == "reference.rms_norm"


def test_strict_allows_the_reference_on_the_cpu(monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")  # no CPU plugin: the reference is the only kernel
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    assert anyaccel.resolve("norm.rms_norm", RMS).selected.name == "reference.rms_norm"


def test_simulated_platform_plans_but_cannot_run(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "testchip:tc_3")
    res = anyaccel.resolve("norm.rms_norm", RMS)
    assert res.platform.simulated and res.selected.name == "testchip.rms_norm"
    rms_norm = anyaccel.bind("norm.rms_norm", RMS)
    with pytest.raises(
        SimulatedPlatformError, match="testchip.rms_norm was selected for the simulated platform"
    ):
        rms_norm(torch.randn(2, 64), torch.ones(64), 1e-6)


def test_bound_call_is_the_kernel_itself_and_resolution_is_cached():
    res = anyaccel.resolve("norm.rms_norm", RMS)
    assert anyaccel.resolve("norm.rms_norm", RMS) is res
    assert anyaccel.bind("norm.rms_norm", RMS) is res.selected.load()


def test_validate_checks_every_call_only_when_asked(monkeypatch):
    x_f16, w = torch.randn(2, 64).half(), torch.ones(64)
    anyaccel.bind("norm.rms_norm", RMS)(x_f16, w, 1e-6)  # unchecked: the hot path does no work
    monkeypatch.setenv("ANYACCEL_VALIDATE", "1")
    anyaccel.reset()
    with pytest.raises(ContractError, match="norm.rms_norm: x must be torch.float32, got torch.float16"):
        anyaccel.bind("norm.rms_norm", RMS)(x_f16, w, 1e-6)


def test_bad_spec_is_a_contract_error():
    with pytest.raises(ContractError, match="norm.rms_norm: hidden_size must be positive, got 0"):
        anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 0))


def test_unknown_op_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown op 'norm.rmsnorm'; known ops: .*norm.rms_norm"):
        anyaccel.resolve("norm.rmsnorm")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"requires": ("anyaccel-no-such-dist",)}, "needs package anyaccel-no-such-dist (not installed)"),
        ({"dtypes": frozenset({torch.bfloat16})}, "dtype float32 not supported (has bfloat16)"),
        (
            {"supports": lambda spec, p: f"hidden_size {spec.hidden_size} is not a multiple of 128"},
            "hidden_size 64 is not a multiple of 128",
        ),
        (
            {"supports": lambda spec, p: 1 // 0},
            "supports() raised ZeroDivisionError: integer division or modulo by zero",
        ),
        (
            {"capability": CapabilityRange(sm("sm_100"), sm("sm_103"))},
            "needs cuda capability sm_100..sm_103; this device is sm_90",
        ),
    ],
)
def test_rejection_reasons(monkeypatch, changes, reason):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "cuda:sm_90")
    k = Kernel("norm.rms_norm", "vendor.rms_norm", "m:f", frozenset({"cuda"}), **changes)
    assert reject_reason(k, RMS, anyaccel.get_platform(), relaxed=False) == reason


def test_kernel_record_validates_its_names():
    with pytest.raises(ValueError, match="name must be 'provider.kernel' and target 'module:function'"):
        Kernel("norm.rms_norm", "rms_norm", "module.function")
