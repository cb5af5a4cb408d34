"""AMD ROCm (torch's HIP build, device type "cuda"). Capability is the gfx target: gfx942 (MI300X/MI325X)
computes fp8 as e4m3fnuz, gfx950 (MI355X) as OCP e4m3fn. Detection prefers amdsmi (no HIP runtime init)."""

from __future__ import annotations

import importlib.util
import re

from .base import Capability, Platform, PlatformFamily, capability_error

EXAMPLES = ("gfx942", "gfx950", "gfx90a", "gfx1100", "gfx1201")
_GFX = re.compile(r"^gfx([0-9a-f]{3,4})")
FNUZ_TARGETS = frozenset({"gfx940", "gfx941", "gfx942"})


def parse_capability(text: str) -> Capability:
    m = _GFX.match(text.strip().lower())  # "gfx942:sramecc+:xnack-" -> gfx942
    if not m:
        raise capability_error("rocm", text, EXAMPLES)
    return Capability("rocm", f"gfx{m.group(1)}", int(m.group(1), 16))


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    fp8 = "float8_e4m3fnuz" if cap.name in FNUZ_TARGETS else "float8_e4m3fn"
    has_fp8 = cap.name in FNUZ_TARGETS or cap.rank >= 0x950
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
    return describe(parse_capability(arch), device_name=name, device_count=len(devices))


FAMILY = PlatformFamily("rocm", probe, parse_capability, describe, EXAMPLES)
