"""Intel GPUs through torch's built-in XPU backend (device type "xpu", oneCCL as "xccl").

Capability is the GPU architecture, ranked by Xe IP version: dg2 (Arc A, 12.55) < pvc (Max 1550, 12.60) <
mtl (12.70) < bmg (Arc B, 20.01) < lnl (Lunar Lake, 20.04) < ptl (30.00).

Hardware features (FEATURES below):
    dpas          XMX matrix engines driven by the DPAS instruction (dg2, pvc, bmg, lnl)
    block_2d_io   subgroup 2D block load / store / prefetch (pvc, bmg)
Not listed, for want of a source: XMX on mtl and arl (integrated Xe-LPG), anything on ptl (Xe3), 2D block
I/O on dg2 and lnl.
"""

from __future__ import annotations

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


def probe() -> Platform | None:
    import torch

    xpu = getattr(torch, "xpu", None)
    if xpu is None or not xpu.is_available():
        return None
    name = xpu.get_device_properties(0).name
    return describe(parse_capability(arch_from_name(name)), device_name=name, device_count=xpu.device_count())


FAMILY = PlatformFamily("xpu", probe, parse_capability, describe, EXAMPLES)
