"""Platform detection for every family through simulated probes: fake NVML / amdsmi modules, torch attributes
(torch.version.cuda / hip, torch.xpu, torch.npu, torch.musa) and find_spec answers. Nothing here needs the
hardware; each test describes one machine and checks the Platform anyaccel builds for it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from types import SimpleNamespace

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.errors import PlatformError, StrictModeError
from anyaccel.ops.norm import NormSpec
from anyaccel.platforms import mps, xpu

VENDOR_PROBE_MODULES = ("pynvml", "amdsmi", "torch_npu", "torch_musa", "pymtml")


def fake_module(monkeypatch, name: str, **attrs) -> types.ModuleType:
    """A module in sys.modules with a spec, so importlib.util.find_spec(name) finds it."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


@pytest.fixture(autouse=True)
def no_vendor_runtime(monkeypatch):
    """Start every test from a machine with no accelerator, whatever the host has installed, with only the
    built-in families (an installed vendor plugin may replace one with its own)."""
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")
    real_find_spec = importlib.util.find_spec

    def find_spec(name, package=None):
        if name in VENDOR_PROBE_MODULES and name not in sys.modules:
            return None
        return real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.xpu, "is_available", lambda: False)


def fake_nvml(monkeypatch, devices: list[tuple[str, tuple[int, int]]]) -> None:
    """NVML answering for `devices` [(name, (major, minor))]; torch is a CUDA build."""
    monkeypatch.setattr(torch.version, "cuda", "12.9")
    fake_module(
        monkeypatch,
        "pynvml",
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: devices[h][0].encode(),  # older pynvml returns bytes
        nvmlDeviceGetCudaComputeCapability=lambda h: devices[h][1],
    )


def fake_amdsmi(monkeypatch, market_name: str, target: str, count: int = 8) -> None:
    monkeypatch.setattr(torch.version, "hip", "6.4.43482")
    fake_module(
        monkeypatch,
        "amdsmi",
        amdsmi_init=lambda: None,
        amdsmi_shut_down=lambda: None,
        amdsmi_get_processor_handles=lambda: list(range(count)),
        amdsmi_get_gpu_asic_info=lambda h: {"market_name": market_name, "target_graphics_version": target},
    )


def fake_npu(monkeypatch, device_name: str, count: int = 8) -> None:
    fake_module(monkeypatch, "torch_npu")
    npu = SimpleNamespace(
        is_available=lambda: True, device_count=lambda: count, get_device_name=lambda i: device_name
    )
    monkeypatch.setattr(torch, "npu", npu, raising=False)


def fake_musa(monkeypatch, devices: list[tuple[str, tuple[int, int]]]) -> None:
    """torch_musa installed (its device probes raise: detection must not use them) and pymtml listing
    `devices` by physical index."""
    fake_module(monkeypatch, "torch_musa")

    def initialises(*args):
        raise AssertionError("torch_musa's device probes initialise the device")

    musa = SimpleNamespace(
        is_available=initialises, device_count=initialises, get_device_capability=initialises
    )
    monkeypatch.setattr(torch, "musa", musa, raising=False)
    fake_module(
        monkeypatch,
        "pymtml",
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: devices[h][0],
        nvmlDeviceGetCudaComputeCapability=lambda h: devices[h][1],
    )


class FakeLevelZero:
    """Intel's Level Zero loader answering the sysman calls platforms/xpu.py makes: one driver, one device
    per given name."""

    def __init__(self, names: list[str], device_type: int = xpu.ZE_DEVICE_TYPE_GPU) -> None:
        self.names = names
        self.device_type = device_type
        self.calls: list[str] = []

    def zesInit(self, flags: int) -> int:
        self.calls.append("zesInit")
        return 0

    @staticmethod
    def _fill(count_ref, handles, values: list[int]) -> int:
        count = count_ref._obj
        if handles is None:
            count.value = len(values)
            return 0
        for i in range(min(count.value, len(values))):
            handles[i] = values[i]
        return 0

    def zesDriverGet(self, count_ref, handles) -> int:
        self.calls.append("zesDriverGet")
        return self._fill(count_ref, handles, [1])

    def zesDeviceGet(self, driver, count_ref, handles) -> int:
        self.calls.append("zesDeviceGet")
        return self._fill(count_ref, handles, list(range(100, 100 + len(self.names))))

    def zesDeviceGetProperties(self, device, props_ref) -> int:
        self.calls.append("zesDeviceGetProperties")
        props = props_ref._obj
        assert props.stype == xpu.ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES
        props.core.type = self.device_type
        props.core.name = self.names[device - 100].encode()
        return 0


def fake_xpu(monkeypatch, device_name: str, count: int = 1) -> None:
    """An XPU build of torch whose devices Level Zero's sysman lists; torch.xpu must not be called (it
    would initialise the device)."""

    def initialises(*args):
        raise AssertionError("XPU detection called torch.xpu, which initialises the device")

    monkeypatch.setattr(torch.version, "xpu", "20250201", raising=False)
    monkeypatch.setattr(xpu, "level_zero_library", lambda: FakeLevelZero([device_name] * count))
    for name in ("is_available", "device_count", "get_device_properties", "get_device_name"):
        monkeypatch.setattr(torch.xpu, name, initialises)


@pytest.mark.parametrize(
    ("device", "cc", "sm", "bf16"),
    [
        ("NVIDIA A100-SXM4-80GB", (8, 0), "sm_80", True),
        ("NVIDIA H100 80GB HBM3", (9, 0), "sm_90", True),
        ("NVIDIA B200", (10, 0), "sm_100", True),
        ("NVIDIA B300 SXM6 AC", (10, 3), "sm_103", True),
        ("NVIDIA Jetson AGX Thor", (11, 0), "sm_110", True),
        ("NVIDIA GeForce RTX 5090", (12, 0), "sm_120", True),
        ("NVIDIA GB10", (12, 1), "sm_121", True),  # DGX Spark
        ("Tesla T4", (7, 5), "sm_75", False),
    ],
)
def test_cuda_through_nvml(monkeypatch, device, cc, sm, bf16):
    fake_nvml(monkeypatch, [(device, cc)] * 8)
    p = anyaccel.get_platform()
    assert (p.name, p.vendor, p.device_type, p.dispatch_key, p.dist_backend) == (
        "cuda",
        "nvidia",
        "cuda",
        "CUDA",
        "nccl",
    )
    assert (p.capability.name, p.device_name, p.device_count, p.simulated) == (sm, device, 8, False)
    assert ("bfloat16" in p.dtypes) is bf16
    assert p.fp8_dtype == ("float8_e4m3fn" if cc >= (8, 9) else None)
    assert p.triton


def test_cuda_capabilities_are_ordered():
    from anyaccel.platforms.cuda import parse_capability

    names = ["sm_80", "sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121"]
    caps = [parse_capability(n) for n in names]
    assert caps == sorted(caps) and [str(c) for c in caps] == names
    assert parse_capability("sm_90a") == parse_capability("sm90")


def test_cuda_without_nvml_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.9")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: SimpleNamespace(name="NVIDIA H100 PCIe", major=9, minor=0),
    )
    p = anyaccel.get_platform()
    assert (p.name, p.capability.name, p.device_count) == ("cuda", "sm_90", 2)


def test_cuda_build_without_devices_is_cpu(monkeypatch):
    fake_nvml(monkeypatch, [])
    assert anyaccel.get_platform().name == "cpu"


@pytest.mark.parametrize(
    ("market", "target", "cap", "fp8"),
    [
        ("AMD Instinct MI300X", "gfx942", "gfx942", "float8_e4m3fnuz"),
        ("AMD Instinct MI355X", "gfx950", "gfx950", "float8_e4m3fn"),
        ("AMD Instinct MI250X", "gfx90a", "gfx90a", None),
    ],
)
def test_rocm_through_amdsmi(monkeypatch, market, target, cap, fp8):
    fake_amdsmi(monkeypatch, market, target)
    p = anyaccel.get_platform()
    assert (p.name, p.vendor, p.device_type, p.dist_backend) == ("rocm", "amd", "cuda", "nccl")
    assert (p.capability.name, p.device_name, p.device_count, p.fp8_dtype) == (cap, market, 8, fp8)
    assert (fp8 in p.dtypes) if fp8 else not any(d.startswith("float8") for d in p.dtypes)


def test_rocm_without_amdsmi_reads_gcn_arch_name(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.4.43482", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: SimpleNamespace(name="AMD Instinct MI300X", gcnArchName="gfx942:sramecc+:xnack-"),
    )
    p = anyaccel.get_platform()
    assert (p.name, p.capability.name, p.device_count, p.fp8_dtype) == (
        "rocm",
        "gfx942",
        4,
        "float8_e4m3fnuz",
    )


@pytest.mark.parametrize(
    ("device", "soc", "bf16"),
    [
        ("Ascend910B2", "ascend910b", True),
        ("Ascend910_9382", "ascend910_93", True),
        ("Ascend310P3", "ascend310p", False),
    ],
)
def test_npu_through_torch_npu(monkeypatch, device, soc, bf16):
    fake_npu(monkeypatch, device)
    p = anyaccel.get_platform()
    assert (p.name, p.vendor, p.device_type, p.dispatch_key, p.dist_backend) == (
        "npu",
        "huawei",
        "npu",
        "PrivateUse1",
        "hccl",
    )
    assert (p.capability.name, p.device_name, p.device_count, p.triton) == (soc, device, 8, False)
    assert ("bfloat16" in p.dtypes) is bf16


@pytest.mark.parametrize(
    ("device", "arch", "fp8"),
    [
        ("Intel(R) Data Center GPU Max 1550", "pvc", None),
        ("Intel(R) Arc(TM) B580 Graphics", "bmg", "float8_e4m3fn"),
        ("Intel(R) Arc(TM) 140V GPU (16GB)", "lnl", "float8_e4m3fn"),
    ],
)
def test_xpu_through_level_zero_sysman(monkeypatch, device, arch, fp8):
    fake_xpu(monkeypatch, device, count=2)
    p = anyaccel.get_platform()
    assert (p.name, p.vendor, p.device_type, p.dispatch_key, p.dist_backend) == (
        "xpu",
        "intel",
        "xpu",
        "XPU",
        "xccl",
    )
    assert (p.capability.name, p.device_count, p.fp8_dtype) == (arch, 2, fp8)


@pytest.mark.parametrize(
    ("device", "cc", "cap", "fp8"),
    [
        ("MTT S80", (2, 1), "mp_21", None),
        ("MTT S4000", (2, 2), "mp_22", None),
        ("MTT S5000", (3, 1), "mp_31", "float8_e4m3fn"),
    ],
)
def test_musa_through_pymtml(monkeypatch, device, cc, cap, fp8):
    fake_musa(monkeypatch, [(device, cc)] * 8)
    p = anyaccel.get_platform()
    assert (p.name, p.vendor, p.device_type, p.dispatch_key, p.dist_backend) == (
        "musa",
        "moorethreads",
        "musa",
        "PrivateUse1",
        "mccl",
    )
    assert (p.capability.name, p.device_name, p.fp8_dtype, p.device_count) == (cap, device, fp8, 8)


def test_musa_visible_devices_pick_and_order_physical_devices(monkeypatch):
    fake_musa(monkeypatch, [("MTT S4000", (2, 2)), ("MTT S5000", (3, 1)), ("MTT S5000", (3, 1))])
    monkeypatch.setenv("MUSA_VISIBLE_DEVICES", "2,0")
    p = anyaccel.get_platform()
    assert (p.capability.name, p.device_count) == ("mp_31", 2)
    monkeypatch.setenv("MUSA_VISIBLE_DEVICES", "0,7,1")  # an index past the devices ends the list
    anyaccel.reset()
    assert (anyaccel.get_platform().capability.name, anyaccel.get_platform().device_count) == ("mp_22", 1)
    monkeypatch.setenv("MUSA_VISIBLE_DEVICES", "")
    anyaccel.reset()
    assert anyaccel.get_platform().name == "cpu"


def test_musa_without_pymtml_is_a_reason_not_a_device_probe(monkeypatch):
    fake_musa(monkeypatch, [("MTT S5000", (3, 1))])
    monkeypatch.delitem(sys.modules, "pymtml")
    assert anyaccel.get_platform().name == "cpu"
    assert "pymtml" in context.get().detection.probe_errors["musa"]


def test_mps_reads_the_chip_generation(monkeypatch):
    monkeypatch.setattr(mps, "_host", SimpleNamespace(system=lambda: "Darwin", machine=lambda: "arm64"))
    monkeypatch.setattr(mps, "chip_name", lambda: "Apple M3 Max")
    p = anyaccel.get_platform()
    assert (p.name, p.vendor, p.device_type, p.capability.name, p.device_name) == (
        "mps",
        "apple",
        "mps",
        "m3",
        "Apple M3 Max",
    )


def test_no_accelerator_is_cpu():
    p = anyaccel.get_platform()
    assert (p.name, p.device_type, p.dist_backend, p.simulated) == ("cpu", "cpu", "gloo", False)


def test_several_accelerators_need_a_choice(monkeypatch):
    fake_nvml(monkeypatch, [("NVIDIA H100 80GB HBM3", (9, 0))])
    fake_npu(monkeypatch, "Ascend910B2")
    with pytest.raises(PlatformError, match=r"several accelerators.*cuda.*npu.*ANYACCEL_PLATFORM"):
        anyaccel.get_platform()
    monkeypatch.setenv("ANYACCEL_PLATFORM", "npu")
    anyaccel.reset()
    assert anyaccel.get_platform().name == "npu"


def test_forcing_a_platform(monkeypatch):
    fake_nvml(monkeypatch, [("NVIDIA B200", (10, 0))])
    monkeypatch.setenv("ANYACCEL_PLATFORM", "cpu")
    assert anyaccel.get_platform().name == "cpu"
    monkeypatch.setenv("ANYACCEL_PLATFORM", "CUDA")
    anyaccel.reset()
    assert anyaccel.get_platform().capability.name == "sm_100"


def test_forcing_an_absent_or_unknown_platform_is_an_error(monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLATFORM", "rocm")
    with pytest.raises(PlatformError, match="no rocm device is usable"):
        anyaccel.get_platform()
    monkeypatch.setenv("ANYACCEL_PLATFORM", "tpu")
    anyaccel.reset()
    with pytest.raises(PlatformError, match=r"'tpu' is not a known platform; known: cpu, cuda"):
        anyaccel.get_platform()


def test_a_raising_probe_becomes_a_reason(monkeypatch):
    fake_nvml(monkeypatch, [])
    monkeypatch.setattr(
        sys.modules["pynvml"], "nvmlInit", lambda: (_ for _ in ()).throw(OSError("NVML: driver gone"))
    )
    assert anyaccel.get_platform().name == "cpu"
    assert context.get().detection.probe_errors == {"cuda": "OSError: NVML: driver gone"}
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    anyaccel.reset()
    with pytest.raises(anyaccel.AnyaccelError, match="probing cuda failed: OSError: NVML: driver gone"):
        anyaccel.get_platform()


def test_strict_forbids_reference_fallback_on_a_forced_accelerator(monkeypatch):
    fake_nvml(monkeypatch, [("NVIDIA H100 80GB HBM3", (9, 0))])
    monkeypatch.setenv("ANYACCEL_PLATFORM", "cuda")
    # leave only the reference for this op, whatever portable kernels exist for it
    others = [k.name for k in context.get().kernels_for("norm.rms_norm") if k.provider != "reference"]
    monkeypatch.setenv("ANYACCEL_KERNELS", ",".join(f"norm.rms_norm=!{name}" for name in others))
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    anyaccel.reset()
    with pytest.raises(StrictModeError, match="norm.rms_norm: only the torch reference"):
        anyaccel.resolve("norm.rms_norm", NormSpec(torch.bfloat16, 4096))


@pytest.mark.parametrize(
    ("text", "name", "cap", "fp8"),
    [
        ("cuda:sm_100", "cuda", "sm_100", "float8_e4m3fn"),
        ("rocm:gfx942", "rocm", "gfx942", "float8_e4m3fnuz"),
        ("rocm:gfx950", "rocm", "gfx950", "float8_e4m3fn"),
        ("npu:ascend910b", "npu", "ascend910b", None),
        ("xpu:bmg", "xpu", "bmg", "float8_e4m3fn"),
        ("musa:mp_31", "musa", "mp_31", "float8_e4m3fn"),
        ("mps:m4", "mps", "m4", None),
        ("cpu:avx512f+amx_bf16", "cpu", "amx_bf16+avx512f", "float8_e4m3fn"),
    ],
)
def test_simulate_every_family(monkeypatch, text, name, cap, fp8):
    monkeypatch.setenv("ANYACCEL_SIMULATE", text)
    p = anyaccel.get_platform()
    assert (p.name, p.capability.name, p.fp8_dtype, p.simulated) == (name, cap, fp8, True)
    assert p.device_name.startswith("simulated")


@pytest.mark.parametrize(
    ("text", "examples"),
    [
        ("cuda:sm_9x", "sm_90, sm_100"),
        ("rocm:mi300", "gfx942, gfx950"),
        ("npu:910c", "ascend910b, ascend910_93"),
        ("xpu:arc", "pvc, bmg"),
        ("musa:s4000", "mp_22, mp_31"),
        ("mps:m9", "m1, m2"),
        ("cpu:avx9", "avx2"),
    ],
)
def test_bad_simulated_capability_lists_valid_examples(monkeypatch, text, examples):
    monkeypatch.setenv("ANYACCEL_SIMULATE", text)
    with pytest.raises(PlatformError, match=f"cannot simulate '{text}'") as err:
        anyaccel.get_platform()
    assert examples in str(err.value)


def test_simulating_an_unknown_platform_lists_the_known_ones(monkeypatch):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "tpu:v5")
    with pytest.raises(
        PlatformError, match="unknown platform 'tpu'; known: cpu, cuda, rocm, npu, xpu, mps, musa"
    ):
        anyaccel.get_platform()


def test_capabilities_of_different_families_do_not_compare():
    from anyaccel.platforms.cuda import parse_capability as cuda_cap
    from anyaccel.platforms.rocm import parse_capability as rocm_cap

    with pytest.raises(TypeError, match="cannot order capability"):
        _ = cuda_cap("sm_90") < rocm_cap("gfx942")


def test_xpu_needs_an_xpu_torch_and_a_listed_gpu(monkeypatch):
    """A CPU build of torch never loads Level Zero; an XPU build finds no platform when the loader is
    missing or sysman lists no GPU (only other device types)."""
    loaded = []
    monkeypatch.setattr(xpu, "level_zero_library", lambda: loaded.append(1))
    assert xpu.probe() is None and not loaded
    monkeypatch.setattr(torch.version, "xpu", "20250201", raising=False)
    assert xpu.probe() is None and loaded
    monkeypatch.setattr(
        xpu, "level_zero_library", lambda: FakeLevelZero(["Intel(R) Xeon CPU"], device_type=2)
    )
    assert xpu.probe() is None
