"""AMD ROCm (torch's HIP build, device type "cuda"). Capability is the gfx target: gfx942 (MI300X/MI325X)
computes fp8 as e4m3fnuz, gfx950 (MI355X) as OCP e4m3fn. Detection prefers amdsmi (no HIP runtime init).

Hardware features (FEATURES below). gfx numbers are not ordered by feature (gfx1100 ranks above gfx950 but
has no MFMA), so every row lists its targets:
    mfma            matrix fused multiply-add (CDNA: gfx908, gfx90a, gfx94x, gfx950)
    xf32_mfma       xf32 MFMA (gfx94x; dropped on gfx950)
    fp8_fnuz        fp8/bf8 matrix instructions in the FNUZ encodings (float8_e4m3fnuz: gfx94x)
    fp8_ocp         fp8/bf8 matrix instructions in the OCP encodings (float8_e4m3fn: gfx950, gfx1200/1201)
    mx_scaled_mfma  MFMA with per-block E8M0 scales over fp8/fp6/fp4 (MXFP8/6/4: gfx950)
    wmma            wave matrix multiply-accumulate (RDNA3/4: gfx11xx, gfx12xx)
"""

from __future__ import annotations

import importlib.util
import re

from .base import Capabilities, Capability, Platform, PlatformFamily, capability_error, features_of

EXAMPLES = ("gfx942", "gfx950", "gfx90a", "gfx1100", "gfx1201")
_GFX = re.compile(r"^gfx([0-9a-f]{3,4})")


# gfx targets names may use (LLVM's AMDGPU processors that ROCm builds for); detection takes whatever the
# device reports, so a newer target is still detected.
KNOWN: tuple[str, ...] = ("gfx900", "gfx906", "gfx908", "gfx90a", "gfx940", "gfx941", "gfx942", "gfx950")
KNOWN += ("gfx1030", "gfx1100", "gfx1101", "gfx1102", "gfx1103", "gfx1150", "gfx1151", "gfx1200", "gfx1201")


def gfx(text: str) -> Capability:
    """The capability a device's gcnArchName reports ("gfx942:sramecc+:xnack-" -> gfx942), known or not."""
    m = _GFX.match(text.strip().lower())
    if not m:
        raise capability_error("rocm", text, EXAMPLES)
    return Capability("rocm", f"gfx{m.group(1)}", int(m.group(1), 16))


def parse_capability(text: str) -> Capability:
    """A gfx target named by a user (--simulate rocm:gfx942); unknown targets are errors listing KNOWN."""
    cap = gfx(text)
    if cap.name not in KNOWN:
        raise capability_error("rocm", text, KNOWN)
    return cap


def _gfx(*targets: str) -> frozenset[Capability]:
    return frozenset(gfx(t) for t in targets)


# Sources: LLVM llvm/lib/TargetParser/TargetParser.cpp (the default features of each gfx target; gfx940 and
# gfx941 shared gfx942's before LLVM dropped them), clang/docs/AMDGPUBuiltins.rst (which builtins need which
# feature) and HIP's include/hip/amd_detail/amd_hip_fp8.h (which fp8 encoding each target computes in).
_GFX94 = _gfx("gfx940", "gfx941", "gfx942")
FEATURES: dict[str, Capabilities] = {
    "mfma": _gfx("gfx908", "gfx90a", "gfx950") | _GFX94,  # "mai-insts"
    "xf32_mfma": _GFX94,  # "xf32-insts": set for gfx942, explicitly not for gfx950
    "fp8_fnuz": _GFX94,  # "fp8-insts"; amd_hip_fp8.h: HIP_FP8_TYPE_FNUZ on gfx942
    # gfx950: "fp8-insts"; gfx12: the fp8 WMMA builtins need "gfx12-insts"; amd_hip_fp8.h: HIP_FP8_TYPE_OCP
    # on gfx950, gfx1200 and gfx1201
    "fp8_ocp": _gfx("gfx950", "gfx1200", "gfx1201"),
    "mx_scaled_mfma": _gfx("gfx950"),  # v_mfma_scale_f32_*_f8f6f4 builtins need "gfx950-insts"
    "wmma": _gfx(  # "wmma-256b-insts" (gfx11) / "wmma-128b-insts" (gfx12)
        *(f"gfx{n}" for n in (1100, 1101, 1102, 1103, 1150, 1151, 1152, 1153, 1154, 1200, 1201))
    ),
}


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    features = features_of(FEATURES, cap)
    fp8 = "float8_e4m3fnuz" if "fp8_fnuz" in features else "float8_e4m3fn"
    has_fp8 = bool({"fp8_fnuz", "fp8_ocp"} & features)
    return Platform(
        name="rocm",
        vendor="amd",
        device_type="cuda",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="CUDA",
        dist_backend="nccl",  # torch maps the "nccl" backend onto RCCL on ROCm builds
        fp8_dtype=fp8 if has_fp8 else None,
        dtypes=("float32", "float16", "bfloat16") + ((fp8,) if has_fp8 else ()),
        triton=True,
        features=features,
        simulated=simulated,
    )


def _amdsmi_devices() -> list[tuple[str, str]]:
    import amdsmi

    amdsmi.amdsmi_init()
    try:
        out = []
        for h in amdsmi.amdsmi_get_processor_handles():
            info = amdsmi.amdsmi_get_gpu_asic_info(h)
            out.append((info.get("market_name", "AMD GPU"), info["target_graphics_version"]))
        return out
    finally:
        amdsmi.amdsmi_shut_down()


def _torch_devices() -> list[tuple[str, str]]:
    import torch

    if torch.cuda.device_count() == 0:
        return []
    props = torch.cuda.get_device_properties(0)
    return [(props.name, props.gcnArchName)] * torch.cuda.device_count()


def probe() -> Platform | None:
    import torch

    if getattr(torch.version, "hip", None) is None:
        return None
    devices = _amdsmi_devices() if importlib.util.find_spec("amdsmi") else _torch_devices()
    if not devices:
        return None
    name, arch = devices[0]
    return describe(gfx(arch), device_name=name, device_count=len(devices))


FAMILY = PlatformFamily("rocm", probe, parse_capability, describe, EXAMPLES)
