"""Moore Threads MUSA through torch_musa (device type "musa", dispatch key PrivateUse1, MCCL).
Capability is the MUSA architecture: mp_21 (MTT S80/S3000), mp_22 (S4000), mp_31 (S5000) (llama.cpp #12077,
#29193; SGLang #16959).

Detection reads the device count and architecture through pymtml (the `mthreads-ml-py` distribution, MTML's
pynvml-compatible bindings), which does not initialise the device, as vLLM-musa's platform does. MTML numbers
physical devices, so MUSA_VISIBLE_DEVICES (comma-separated physical indices) selects and orders them.
torch_musa is imported only once MTML has found a device (it registers the "musa" device type and the mccl
backend, and initialises lazily); its own probes are never used: `get_device_capability` initialises the
device, and its `_get_musa_arch` answers 22 when that fails. Without pymtml the probe fails with that reason.

Hardware features (FEATURES below):
    fp8_mma    fp8 (e4m3) matrix compute (mp_31 and newer)
Nothing else is listed: MATE's FlashAttention-3 also requires mp_31, but that is a library's gate, and the
hardware feature behind it was not confirmed from a public source.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
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

EXAMPLES = ("mp_22", "mp_31", "mp_21")
_MP = re.compile(r"^mp_?(\d)(\d)$")


def parse_capability(text: str) -> Capability:
    m = _MP.match(text.strip().lower())
    if not m:
        raise capability_error("musa", text, EXAMPLES)
    return mp(int(m.group(1)), int(m.group(2)))


def mp(major: int, minor: int) -> Capability:
    return Capability("musa", f"mp_{major}{minor}", major * 10 + minor)


# vllm-musa's platform.py gates fp8 on capability >= (3, 1); torch_musa's tests run _scaled_mm only from 31.
FEATURES: dict[str, Capabilities] = {
    "fp8_mma": CapabilityRange.at_least(mp(3, 1)),
}


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    features = features_of(FEATURES, cap)
    fp8 = "float8_e4m3fn" if "fp8_mma" in features else None
    return Platform(
        name="musa",
        vendor="moorethreads",
        device_type="musa",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="PrivateUse1",
        dist_backend="mccl",
        fp8_dtype=fp8,
        dtypes=("float32", "float16", "bfloat16") + ((fp8,) if fp8 else ()),
        triton=True,
        features=features,
        simulated=simulated,
    )


def visible_devices(count: int) -> list[int]:
    """The physical MTML indices this process may use, in MUSA_VISIBLE_DEVICES order (all when unset)."""
    text = os.environ.get("MUSA_VISIBLE_DEVICES")
    if text is None:
        return list(range(count))
    picked = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if not item.isdigit():
            raise ValueError(f"MUSA_VISIBLE_DEVICES={text!r}: expected comma-separated device indices")
        if int(item) >= count:
            break  # as CUDA_VISIBLE_DEVICES: an index past the devices ends the list
        picked.append(int(item))
    return picked


def _mtml_devices() -> list[tuple[str, int, int]]:
    """(name, major, minor) of each visible device through pymtml; no MUSA context is created."""
    import pymtml

    # vLLM-musa (vllm_musa/platform.py) never calls nvmlShutdown: pymtml's nvmlInit fails after one.
    pymtml.nvmlInit()
    out = []
    for index in visible_devices(pymtml.nvmlDeviceGetCount()):
        handle = pymtml.nvmlDeviceGetHandleByIndex(index)
        name = pymtml.nvmlDeviceGetName(handle)
        major, minor = pymtml.nvmlDeviceGetCudaComputeCapability(handle)
        out.append((name.decode() if isinstance(name, bytes) else str(name), int(major), int(minor)))
    return out


def probe() -> Platform | None:
    if importlib.util.find_spec("torch_musa") is None:
        return None  # without torch_musa no tensor can live on a MUSA device
    if importlib.util.find_spec("pymtml") is None:
        raise RuntimeError(
            "torch_musa is installed but pymtml (pip install mthreads-ml-py) is not: the MUSA architecture "
            "cannot be read without initialising the device (torch_musa's probe does, and answers 22 when "
            "it fails); ANYACCEL_SIMULATE=musa:<mp_xx> plans without a device"
        )
    devices = _mtml_devices()
    if not devices:
        return None
    # registers the "musa" device type and the mccl backend with torch; torch_musa initialises lazily
    importlib.import_module("torch_musa")
    name, major, minor = devices[0]
    return describe(mp(major, minor), device_name=name, device_count=len(devices))


FAMILY = PlatformFamily("musa", probe, parse_capability, describe, EXAMPLES)
