"""NVIDIA CUDA. Capability is the SM version (sm_90 Hopper, sm_100/sm_103 Blackwell DC, sm_110 Thor,
sm_120/sm_121 Blackwell consumer and DGX Spark). Detection asks NVML first so no CUDA context is created
in a process that may fork workers later."""

from __future__ import annotations

import importlib.util
import re

from .base import Capability, Platform, PlatformFamily, capability_error

EXAMPLES = ("sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121", "sm_80")
_SM = re.compile(r"^sm_?(\d{2,3})a?$")


def parse_capability(text: str) -> Capability:
    m = _SM.match(text.strip().lower())
    if not m:
        raise capability_error("cuda", text, EXAMPLES)
    digits = m.group(1)
    major, minor = int(digits[:-1]), int(digits[-1])
    return sm(major, minor)


def sm(major: int, minor: int) -> Capability:
    return Capability("cuda", f"sm_{major}{minor}", major * 10 + minor)


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    dtypes = ("float32", "float16") + (("bfloat16",) if cap.rank >= 80 else ())
    fp8 = "float8_e4m3fn" if cap.rank >= 89 else None
    return Platform(
        name="cuda",
        vendor="nvidia",
        device_type="cuda",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="CUDA",
        dist_backend="nccl",
        fp8_dtype=fp8,
        dtypes=dtypes + (("float8_e4m3fn",) if fp8 else ()),
        triton=True,
        simulated=simulated,
    )


def _nvml_devices() -> list[tuple[str, int, int]]:
    """(name, major, minor) per device through NVML, which does not create a CUDA context."""
    import pynvml

    pynvml.nvmlInit()
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            out.append((name.decode() if isinstance(name, bytes) else name, major, minor))
        return out
    finally:
        pynvml.nvmlShutdown()


def _torch_devices() -> list[tuple[str, int, int]]:
    """Fallback without NVML: device_count() does not create a context; properties of device 0 do."""
    import torch

    if torch.version.cuda is None or torch.cuda.device_count() == 0:
        return []
    props = torch.cuda.get_device_properties(0)
    return [(props.name, props.major, props.minor)] * torch.cuda.device_count()


def probe() -> Platform | None:
    import torch

    if torch.version.cuda is None:  # a CPU or ROCm build of torch cannot run CUDA kernels
        return None
    devices = _nvml_devices() if importlib.util.find_spec("pynvml") else _torch_devices()
    if not devices:
        return None
    name, major, minor = devices[0]
    return describe(sm(major, minor), device_name=name, device_count=len(devices))


FAMILY = PlatformFamily("cuda", probe, parse_capability, describe, EXAMPLES)
