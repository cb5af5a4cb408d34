"""Intel GPUs through torch's built-in XPU backend (device type "xpu", oneCCL as "xccl").

Capability is the GPU architecture, ranked by Xe IP version: dg2 (Arc A, 12.55) < pvc (Max 1550, 12.60) <
mtl (12.70) < bmg (Arc B, 20.01) < lnl (Lunar Lake, 20.04) < ptl (30.00).

Hardware features (FEATURES below):
    dpas          XMX matrix engines driven by the DPAS instruction (dg2, pvc, bmg, lnl)
    block_2d_io   subgroup 2D block load / store / prefetch (pvc, bmg)
Not listed, for want of a source: XMX on mtl and arl (integrated Xe-LPG), anything on ptl (Xe3), 2D block
I/O on dg2 and lnl.

Detection initialises no device: the GPUs are listed through Level Zero's sysman API (ctypes on the loader
that Intel's driver installs) and the architecture is told from the device name it reports.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from .base import Capabilities, Capability, Platform, PlatformFamily, features_of, ranked_table

EXAMPLES = ("pvc", "bmg", "lnl", "dg2")
ARCHES = {"dg2": 1255, "pvc": 1260, "mtl": 1270, "arl": 1274, "bmg": 2001, "lnl": 2004, "ptl": 3000}
parse_capability = ranked_table("xpu", ARCHES, EXAMPLES)


def _arches(*names: str) -> frozenset[Capability]:
    return frozenset(parse_capability(n) for n in names)


# dpas: the SYCL joint_matrix GEMM kernels of github.com/dkhaldi/sycl_joint_matrix_kernels run on the XMX
# of PVC, LNL, BMG and DG2; IGC's IBiF_dpas.cl defines DPAS for XeHP (SIMD8) and PVC (SIMD16). block_2d_io:
# MLIR's XeGPU uArch (mlir/include/mlir/Dialect/XeGPU/uArch/IntelGpuXe2.h) registers DPAS and the subgroup
# 2D block load / store / prefetch instructions for PVC and BMG.
FEATURES: dict[str, Capabilities] = {
    "dpas": _arches("dg2", "pvc", "bmg", "lnl"),
    "block_2d_io": _arches("pvc", "bmg"),
}

# Marketing-name fragments -> architecture, for drivers that report no architecture field.
_NAME_HINTS = (
    ("max 1", "pvc"),
    ("data center gpu max", "pvc"),
    ("arc(tm) b", "bmg"),
    ("arc b", "bmg"),
    ("arc(tm) a", "dg2"),
    ("arc a", "dg2"),
    ("lunar lake", "lnl"),
    ("140v", "lnl"),
    ("meteor lake", "mtl"),
    ("arrow lake", "arl"),
    ("panther lake", "ptl"),
)


def arch_from_name(device_name: str) -> str:
    lowered = device_name.lower()
    for hint, arch in _NAME_HINTS:
        if hint in lowered:
            return arch
    raise ValueError(f"cannot tell the Intel GPU architecture of {device_name!r}; known: {', '.join(ARCHES)}")


def describe(cap, *, device_name: str, device_count: int = 1, simulated: bool = False) -> Platform:
    return Platform(
        name="xpu",
        vendor="intel",
        device_type="xpu",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="XPU",
        dist_backend="xccl",
        fp8_dtype="float8_e4m3fn" if cap.rank >= ARCHES["bmg"] else None,
        dtypes=("float32", "float16", "bfloat16"),
        triton=True,
        features=features_of(FEATURES, cap),
        simulated=simulated,
    )


class _DeviceProperties(ctypes.Structure):
    """ze_device_properties_t (Level Zero ze_api.h)."""

    _fields_ = [
        ("stype", ctypes.c_int32),
        ("pNext", ctypes.c_void_p),
        ("type", ctypes.c_int32),
        ("vendorId", ctypes.c_uint32),
        ("deviceId", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("subdeviceId", ctypes.c_uint32),
        ("coreClockRate", ctypes.c_uint32),
        ("maxMemAllocSize", ctypes.c_uint64),
        ("maxHardwareContexts", ctypes.c_uint32),
        ("maxCommandQueuePriority", ctypes.c_uint32),
        ("numThreadsPerEU", ctypes.c_uint32),
        ("physicalEUSimdWidth", ctypes.c_uint32),
        ("numEUsPerSubslice", ctypes.c_uint32),
        ("numSubslicesPerSlice", ctypes.c_uint32),
        ("numSlices", ctypes.c_uint32),
        ("timerResolution", ctypes.c_uint64),
        ("timestampValidBits", ctypes.c_uint32),
        ("kernelTimestampValidBits", ctypes.c_uint32),
        ("uuid", ctypes.c_uint8 * 16),
        ("name", ctypes.c_char * 256),
    ]


class SysmanDeviceProperties(ctypes.Structure):
    """zes_device_properties_t (Level Zero zes_api.h): the core properties and the board's strings."""

    _fields_ = [
        ("stype", ctypes.c_int32),
        ("pNext", ctypes.c_void_p),
        ("core", _DeviceProperties),
        ("numSubdevices", ctypes.c_uint32),
        ("serialNumber", ctypes.c_char * 64),
        ("boardNumber", ctypes.c_char * 64),
        ("brandName", ctypes.c_char * 64),
        ("modelName", ctypes.c_char * 64),
        ("vendorName", ctypes.c_char * 64),
        ("driverVersion", ctypes.c_char * 64),
    ]


ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES = 0x1
ZE_DEVICE_TYPE_GPU = 1


def _handles(get, *parent) -> list[ctypes.c_void_p]:
    count = ctypes.c_uint32(0)
    if get(*parent, ctypes.byref(count), None) != 0 or count.value == 0:
        return []
    handles = (ctypes.c_void_p * count.value)()
    if get(*parent, ctypes.byref(count), handles) != 0:
        return []
    return list(handles)[: count.value]


def level_zero_library():
    """The Level Zero loader (ships with Intel's GPU driver), or None."""
    name = ctypes.util.find_library("ze_loader") or "libze_loader.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def sysman_devices(lib) -> list[str]:
    """The name of every GPU Level Zero's System Resource Management API lists (zesInit, zesDriverGet,
    zesDeviceGet, zesDeviceGetProperties). Sysman enumerates devices without creating a context on them,
    as torch.xpu.device_count() does; the SYCL runtime (torch.xpu's other calls) is not touched."""
    if lib.zesInit(0) != 0:
        return []
    names = []
    for driver in _handles(lib.zesDriverGet):
        for device in _handles(lib.zesDeviceGet, driver):
            props = SysmanDeviceProperties(stype=ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES)
            if lib.zesDeviceGetProperties(device, ctypes.byref(props)) != 0:
                continue
            if props.core.type != ZE_DEVICE_TYPE_GPU:
                continue
            name = props.core.name.decode(errors="replace") or props.modelName.decode(errors="replace")
            names.append(name)
    return names


def probe() -> Platform | None:
    """An XPU build of torch (torch.version.xpu, plain data) and GPUs that Level Zero's sysman lists; the
    architecture from the first device's name. Nothing here initialises a device: no torch.xpu call."""
    import torch

    if not getattr(torch.version, "xpu", None):
        return None
    lib = level_zero_library()
    names = sysman_devices(lib) if lib is not None else []
    if not names:
        return None
    return describe(parse_capability(arch_from_name(names[0])), device_name=names[0], device_count=len(names))


FAMILY = PlatformFamily("xpu", probe, parse_capability, describe, EXAMPLES)
