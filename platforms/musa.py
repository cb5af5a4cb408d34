"""Moore Threads MUSA through torch_musa (device type "musa", dispatch key PrivateUse1, MCCL).
Capability is the MUSA architecture: mp_21 (S80/S3000), mp_22 (S4000), mp_31 (S5000).

Hardware features (FEATURES below):
    fp8_mma    fp8 (e4m3) matrix compute (mp_31 and newer)
Nothing else is listed: MATE's FlashAttention-3 also requires mp_31, but that is a library's gate, and the
hardware feature behind it was not confirmed from a public source.
"""

from __future__ import annotations

import importlib
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


def probe() -> Platform | None:
    if importlib.util.find_spec("torch_musa") is None:
        return None
    importlib.import_module("torch_musa")  # registers the "musa" device with torch
    import torch

    musa = torch.musa  # type: ignore[attr-defined]
    if not musa.is_available() or musa.device_count() == 0:
        return None
    major, minor = musa.get_device_capability(0)
    return describe(mp(major, minor), device_name=musa.get_device_name(0), device_count=musa.device_count())


FAMILY = PlatformFamily("musa", probe, parse_capability, describe, EXAMPLES)
