"""NVIDIA CUDA. Capability is the SM version (sm_90 Hopper, sm_100/sm_103 Blackwell DC, sm_110 Thor,
sm_120/sm_121 Blackwell consumer and DGX Spark). Detection asks NVML first so no CUDA context is created
in a process that may fork workers later.

Hardware features (FEATURES below; each row names its PTX ISA source):
    mma_sync              warp-level mma.sync with f16 m16n8k16 shapes (sm_80+)
    bf16                  bf16 tensor-core MMA (sm_80+)
    cp_async              cp.async global->shared copies (sm_80+)
    fp8_mma               e4m3/e5m2 tensor-core MMA (sm_89+)
    tma                   tensor memory accelerator, cp.async.bulk.tensor (sm_90+)
    clusters              thread-block clusters and distributed shared memory (sm_90+)
    wgmma                 warpgroup MMA, wgmma.mma_async (sm_90 only: not on Blackwell)
    tcgen05               5th-generation tensor-core instructions (sm_10x and sm_11x: not on sm_12x)
    tmem                  tensor memory, tcgen05.alloc (same devices as tcgen05)
    fp4_block_scaled_mma  MXFP4 / NVFP4 MMA with hardware block scales (sm_10x, sm_11x, sm_12x)
    mxfp8_mma             MXFP8 / MXFP6 MMA with hardware block scales (sm_10x, sm_11x, sm_12x)
"""

from __future__ import annotations

import importlib.util
import re

from .base import (
    Capabilities,
    Capability,
    CapabilityRange,
    Platform,
    PlatformFamily,
    capability_error,
    features_of,
)

EXAMPLES = ("sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121", "sm_80")
# Compute capabilities of shipped GPUs that names may use (detection takes whatever the driver reports).
# 10.1 was renamed 11.0 (Thor) in CUDA 13, so it is not a name of its own here.
KNOWN: tuple[str, ...] = ("sm_70", "sm_72", "sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90")
KNOWN += ("sm_100", "sm_103", "sm_110", "sm_120", "sm_121")
_SM = re.compile(r"^sm_?(\d{2,3})[af]?$")


def parse_capability(text: str) -> Capability:
    """The capability named "sm_100" (also "sm100", "sm_100a", "sm_100f"); unknown SM numbers are errors."""
    m = _SM.match(text.strip().lower())
    if not m or f"sm_{m.group(1)}" not in KNOWN:
        raise capability_error("cuda", text, KNOWN)
    digits = m.group(1)
    major, minor = int(digits[:-1]), int(digits[-1])
    return sm(major, minor)


def sm(major: int, minor: int) -> Capability:
    return Capability("cuda", f"sm_{major}{minor}", major * 10 + minor)


# Each row cites the "Target ISA Notes" of the instruction in NVIDIA's PTX ISA manual (version 9.1). A
# family target stands for its family: sm_100f covers sm_100, sm_103 and later sm_10x; sm_110f (formerly
# sm_101f) later sm_11x; sm_120f covers sm_121 and later sm_12x ("Architecture Families", .target directive).
# tcgen05.mma / tcgen05.alloc: sm_100a, sm_101a (now sm_110a), and the sm_100f and sm_110f families; no
# sm_12x target is listed, so the consumer Blackwell parts have neither tcgen05 nor tensor memory.
_TCGEN05 = CapabilityRange(sm(10, 0), sm(11, 9))
# Block-scaled MMA (.kind::mxf4, mxf4nvf4, mxf8f6f4 with .block_scale): through tcgen05.mma on the devices
# above, and through warp-level mma.sync from sm_120a and the sm_120f family (release notes: mxf4 and
# mxf4nvf4 on sm_120a and sm_121a).
_BLOCK_SCALED = CapabilityRange(sm(10, 0), sm(12, 9))
FEATURES: dict[str, Capabilities] = {
    "mma_sync": CapabilityRange.at_least(sm(8, 0)),  # mma.sync .f16 m16n8k16: sm_80 and higher
    "bf16": CapabilityRange.at_least(sm(8, 0)),  # mma.sync .bf16: sm_80 and higher
    "cp_async": CapabilityRange.at_least(sm(8, 0)),  # cp.async: sm_80 and higher
    "fp8_mma": CapabilityRange.at_least(sm(8, 9)),  # mma.sync .e4m3 / .e5m2: sm_89 and higher
    "tma": CapabilityRange.at_least(sm(9, 0)),  # cp.async.bulk.tensor: sm_90 and higher
    "clusters": CapabilityRange.at_least(sm(9, 0)),  # barrier.cluster, %cluster_ctaid: sm_90 and higher
    "wgmma": frozenset({sm(9, 0)}),  # wgmma.mma_async: sm_90a only (architecture-specific)
    "tcgen05": _TCGEN05,
    "tmem": _TCGEN05,
    "fp4_block_scaled_mma": _BLOCK_SCALED,
    "mxfp8_mma": _BLOCK_SCALED,
}


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    features = features_of(FEATURES, cap)
    dtypes = ("float32", "float16") + (("bfloat16",) if "bf16" in features else ())
    fp8 = "float8_e4m3fn" if "fp8_mma" in features else None
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
        features=features,
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
