"""Hardware features as data: each family's feature table, open-ended capability ranges, and kernels that
require features instead of listing capabilities (the `== 120` / missing-sm_110 / dropped-sm_121 gates)."""

from __future__ import annotations

import json

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.cli.main import main
from anyaccel.dispatch import _platform_reason, rank, resolve
from anyaccel.ops.norm import NormSpec
from anyaccel.platforms import cpu, cuda, mps, musa, npu, rocm, xpu
from anyaccel.platforms.base import CapabilityRange, Platform
from anyaccel.registry import ANY, Kernel

RMS = NormSpec(torch.float32, 64)
FAMILIES = (cpu, cuda, rocm, npu, xpu, mps, musa)


@pytest.fixture(autouse=True)
def builtin_families_only(monkeypatch):
    """The built-in tables, whatever vendor plugins are installed (a plugin may replace a family)."""
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")
    anyaccel.reset()


def simulate(family: str, capability: str) -> Platform:
    return context.get().families[family].simulate(capability)


def features(family: str, capability: str) -> frozenset[str]:
    return simulate(family, capability).features


@pytest.mark.parametrize(
    ("family", "capability", "has", "lacks"),
    [
        ("cuda", "sm_75", set(), {"mma_sync", "bf16", "cp_async", "fp8_mma"}),
        ("cuda", "sm_80", {"mma_sync", "bf16", "cp_async"}, {"fp8_mma", "tma"}),
        ("cuda", "sm_89", {"fp8_mma"}, {"tma", "wgmma"}),
        ("cuda", "sm_90", {"wgmma", "tma", "clusters", "fp8_mma"}, {"tcgen05", "fp4_block_scaled_mma"}),
        ("cuda", "sm_100", {"tcgen05", "tmem", "fp4_block_scaled_mma", "mxfp8_mma", "tma"}, {"wgmma"}),
        ("cuda", "sm_103", {"tcgen05", "tmem", "fp4_block_scaled_mma", "mxfp8_mma"}, {"wgmma"}),
        ("cuda", "sm_110", {"tcgen05", "tmem", "fp4_block_scaled_mma", "mxfp8_mma"}, {"wgmma"}),
        ("cuda", "sm_120", {"fp4_block_scaled_mma", "mxfp8_mma", "tma"}, {"tcgen05", "tmem", "wgmma"}),
        ("cuda", "sm_121", {"fp4_block_scaled_mma", "mxfp8_mma", "tma"}, {"tcgen05", "tmem", "wgmma"}),
        ("rocm", "gfx90a", {"mfma"}, {"fp8_fnuz", "fp8_ocp", "wmma"}),
        ("rocm", "gfx942", {"mfma", "fp8_fnuz", "xf32_mfma"}, {"fp8_ocp", "mx_scaled_mfma"}),
        ("rocm", "gfx950", {"mfma", "fp8_ocp", "mx_scaled_mfma"}, {"fp8_fnuz", "xf32_mfma"}),
        ("rocm", "gfx1100", {"wmma"}, {"mfma", "fp8_fnuz", "fp8_ocp"}),
        ("rocm", "gfx1201", {"wmma", "fp8_ocp"}, {"mfma", "fp8_fnuz"}),
        ("npu", "ascend910b", {"bf16"}, set()),
        ("npu", "ascend910_93", {"bf16"}, set()),
        ("npu", "ascend310p", set(), {"bf16"}),
        ("xpu", "pvc", {"dpas", "block_2d_io"}, set()),
        ("xpu", "bmg", {"dpas", "block_2d_io"}, set()),
        ("xpu", "lnl", {"dpas"}, {"block_2d_io"}),
        ("xpu", "mtl", set(), {"dpas"}),
        ("mps", "m1", {"simdgroup_matrix", "bf16"}, set()),
        ("musa", "mp_31", {"fp8_mma"}, set()),
        ("musa", "mp_22", set(), {"fp8_mma"}),
        ("cpu", "avx512f+amx_bf16", {"avx512f", "amx_bf16"}, {"avx2", "neon"}),
    ],
)
def test_feature_table(family, capability, has, lacks):
    found = features(family, capability)
    assert has <= found, f"{family} {capability} lacks {sorted(has - found)}"
    assert not lacks & found, f"{family} {capability} should not have {sorted(lacks & found)}"


def test_cuda_dtypes_follow_the_features():
    for name in ("sm_75", "sm_80", "sm_89", "sm_90", "sm_121"):
        p = simulate("cuda", name)
        assert ("bfloat16" in p.dtypes) == ("bf16" in p.features), name
        assert (p.fp8_dtype is not None) == ("fp8_mma" in p.features), name


@pytest.mark.parametrize(
    ("capability", "fp8"),
    [
        ("gfx942", "float8_e4m3fnuz"),
        ("gfx950", "float8_e4m3fn"),
        ("gfx1201", "float8_e4m3fn"),
        ("gfx1100", None),  # RDNA3 has no fp8 matrix instructions, although gfx1100 ranks above gfx950
        ("gfx90a", None),
    ],
)
def test_rocm_fp8_flavour_follows_the_features(capability, fp8):
    assert simulate("rocm", capability).fp8_dtype == fp8


def test_cpu_isa_flags_are_its_features(monkeypatch):
    assert simulate("cpu", "avx2+avx512f").features == frozenset({"avx2", "avx512f"})
    # arm64 Linux names Advanced SIMD "asimd" in /proc/cpuinfo: it is the neon feature
    monkeypatch.setattr(cpu, "_cpuinfo_flags", lambda: frozenset({"fp", "asimd", "sve", "sha2"}))
    p = cpu.probe()
    assert p.features == frozenset({"neon", "sve"}) and p.capability.name == "neon+sve"


@pytest.mark.parametrize("module", FAMILIES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_feature_is_documented_in_its_family_docstring(module):
    vocabulary = module.KNOWN_FLAGS if module is cpu else tuple(module.FEATURES)
    assert vocabulary
    undocumented = [f for f in vocabulary if f not in (module.__doc__ or "")]
    assert not undocumented, f"{module.__name__} docstring does not name {undocumented}"
    for feature in vocabulary:
        assert feature.isidentifier() and feature == feature.lower()


def test_features_are_in_the_platform_json():
    data = simulate("cuda", "sm_90").to_json()
    assert data["features"] == sorted(data["features"]) and "wgmma" in data["features"]


def test_info_shows_the_features(capsys):
    assert main(["info", "--simulate", "cuda:sm_121"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("  features: "))
    assert line == "  features: " + ", ".join(sorted(features("cuda", "sm_121")))
    assert main(["info", "--simulate", "rocm:gfx950", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["platform"]["features"] == [
        "fp8_ocp",
        "mfma",
        "mx_scaled_mfma",
    ]


# ---- open-ended capability ranges


def test_open_range_membership_and_display():
    sm = cuda.parse_capability
    newer = CapabilityRange.at_least(sm("sm_100"))
    assert newer == CapabilityRange(sm("sm_100"), None) and str(newer) == "sm_100+"
    inside = [sm(c) in newer for c in ("sm_89", "sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121")]
    assert inside == [False, False, True, True, True, True, True]
    assert cuda.sm(20, 0) in newer  # "and newer in this family": a device this table has never heard of
    assert rocm.parse_capability("gfx950") not in newer  # another family is never inside


def test_closed_ranges_keep_their_behaviour():
    sm = cuda.parse_capability
    closed = CapabilityRange(sm("sm_100"), sm("sm_103"))
    assert str(closed) == "sm_100..sm_103" and closed.width == 3
    assert sm("sm_103") in closed and sm("sm_110") not in closed
    assert str(CapabilityRange(sm("sm_90"), sm("sm_90"))) == "sm_90"
    with pytest.raises(ValueError, match="empty capability range sm_103..sm_100"):
        CapabilityRange(sm("sm_103"), sm("sm_100"))


def test_open_range_is_the_widest_so_a_closed_range_wins_a_tie():
    sm = cuda.parse_capability
    widest_closed = CapabilityRange(rocm.gfx("gfx600"), rocm.gfx("gfx1250"))
    assert CapabilityRange.at_least(sm("sm_80")).width > widest_closed.width

    def k(name: str, capability) -> Kernel:
        return Kernel("norm.rms_norm", name, "m:f", frozenset({"cuda"}), capability, priority=1)

    ranked = rank(
        [
            k("vendor.a_any", None),
            k("vendor.b_open", CapabilityRange.at_least(sm("sm_80"))),
            k("vendor.c_closed", CapabilityRange(sm("sm_80"), sm("sm_121"))),
        ]
    )
    assert [x.name for x in ranked] == ["vendor.c_closed", "vendor.b_open", "vendor.a_any"]


# ---- kernels that require features, resolved on simulated devices


def register(kernel: Kernel) -> Kernel:
    """Add an ad-hoc kernel to the current context, owned like the reference kernels (active)."""
    ctx = context.get()
    owner = ctx.kernel_owner[ctx.kernels_for(kernel.op)[0].name]
    ctx.kernels[kernel.op] = [*ctx.kernels[kernel.op], kernel]
    ctx.kernel_owner[kernel.name] = owner
    return kernel


def vendor_kernel(name: str, **kw) -> Kernel:
    return register(Kernel("norm.rms_norm", name, "m:f", frozenset({"cuda"}), priority=1000, **kw))


def reasons(res) -> dict[str, str]:
    return {c.kernel.name: c.reason for c in res.candidates}


@pytest.mark.parametrize("capability", ["sm_100", "sm_103", "sm_110"])
def test_a_tcgen05_kernel_is_selected_on_tcgen05_devices(capability):
    vendor_kernel("vendor.tcgen05_norm", features=frozenset({"tcgen05"}))
    res = resolve("norm.rms_norm", RMS, platform=simulate("cuda", capability))
    assert res.selected is not None and res.selected.name == "vendor.tcgen05_norm"


@pytest.mark.parametrize("capability", ["sm_90", "sm_120", "sm_121"])
def test_a_tcgen05_kernel_is_rejected_elsewhere_with_the_reason(capability):
    vendor_kernel("vendor.tcgen05_norm", features=frozenset({"tcgen05"}))
    platform = simulate("cuda", capability)
    res = resolve("norm.rms_norm", RMS, platform=platform)
    has = ", ".join(sorted(platform.features))
    assert reasons(res)["vendor.tcgen05_norm"] == f"needs hardware feature tcgen05 ({capability} has: {has})"
    assert res.selected is not None and res.selected.name != "vendor.tcgen05_norm"


def test_several_missing_features_are_all_named():
    platform = simulate("cuda", "sm_80")
    k = Kernel("norm.rms_norm", "vendor.k", "m:f", frozenset({"cuda"}), features={"wgmma", "tma", "bf16"})
    reason = _platform_reason(k, platform, relaxed=False)
    assert reason == "needs hardware features tma, wgmma (sm_80 has: bf16, cp_async, mma_sync)"


def test_capability_is_checked_before_features():
    sm = cuda.parse_capability
    k = Kernel(
        "norm.rms_norm",
        "vendor.k",
        "m:f",
        frozenset({"cuda"}),
        CapabilityRange.at_least(sm("sm_120")),
        features=frozenset({"tcgen05"}),
    )
    assert _platform_reason(k, simulate("cuda", "sm_110"), False) == (
        "needs cuda capability sm_120+; this device is sm_110"
    )
    assert _platform_reason(k, simulate("cuda", "sm_121"), False).startswith("needs hardware feature tcgen05")


def test_features_are_not_checked_off_the_kernels_platform():
    on_any = Kernel("norm.rms_norm", "vendor.any", "m:f", frozenset({ANY}), features={"tcgen05"})
    sm120 = simulate("cuda", "sm_120")
    assert _platform_reason(on_any, sm120, relaxed=False).startswith("needs hardware feature tcgen05")
    assert _platform_reason(on_any, sm120, relaxed=True) is None
    off = Kernel(
        "norm.rms_norm", "vendor.off", "m:f", {"cuda"}, features={"tcgen05"}, off_platform=lambda: None
    )
    assert _platform_reason(off, simulate("cpu", "avx2"), relaxed=True) is None


# ---- the seeds' gating bugs, as features and open ranges make them impossible


@pytest.mark.parametrize(
    ("capability", "reached"),
    [
        ("sm_90", False),
        ("sm_100", True),
        ("sm_103", True),
        ("sm_110", True),  # a Blackwell check that forgot SM110 (Thor)
        ("sm_120", True),
        ("sm_121", True),  # an `== 120` check that dropped SM121 (DGX Spark)
    ],
)
def test_a_kernel_gated_on_block_scaled_fp4_reaches_every_device_that_has_it(capability, reached):
    vendor_kernel("vendor.nvfp4_norm", features=frozenset({"fp4_block_scaled_mma"}))
    res = resolve("norm.rms_norm", RMS, platform=simulate("cuda", capability))
    assert (res.selected.name == "vendor.nvfp4_norm") is reached, reasons(res)["vendor.nvfp4_norm"]


@pytest.mark.parametrize("capability", ["sm_89", "sm_90", "sm_120", "sm_121"])
def test_a_kernel_gated_on_fp8_mma_reaches_sm121(capability):
    # an `in [89, 120]` list dropped SM121; the feature cannot forget a device of the family
    vendor_kernel("vendor.fp8_norm", features=frozenset({"fp8_mma"}))
    res = resolve("norm.rms_norm", RMS, platform=simulate("cuda", capability))
    assert res.selected is not None and res.selected.name == "vendor.fp8_norm"


@pytest.mark.parametrize(("capability", "reached"), [("sm_110", False), ("sm_120", True), ("sm_121", True)])
def test_an_open_range_reaches_sm121_where_equality_stopped_at_120(capability, reached):
    low = cuda.parse_capability("sm_120")
    vendor_kernel("vendor.sm12x_norm", capability=CapabilityRange.at_least(low))
    res = resolve("norm.rms_norm", RMS, platform=simulate("cuda", capability))
    assert (res.selected.name == "vendor.sm12x_norm") is reached
    if not reached:
        assert (
            reasons(res)["vendor.sm12x_norm"] == f"needs cuda capability sm_120+; this device is {capability}"
        )
