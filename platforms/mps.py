"""Apple silicon (Metal). torch runs it as device type "mps"; the anyaccel-mlx plugin runs MLX kernels on it.
Capability is the chip generation m1..m5, read from the CPU brand string without touching Metal.

Hardware features (FEATURES below):
    simdgroup_matrix  Metal simdgroup matrix multiply (Apple7 GPU family and later: m1..m4)
    bf16              Metal's bfloat type (Apple6 family and later: m1..m4)
m5 is left out of both: the Metal feature set tables read here (June 2024) end at m4 (Apple9). The m5
GPU's neural accelerators are not listed either: no public source confirmed how kernels reach them.
"""

from __future__ import annotations

import platform as _host
import re
import subprocess

from .base import Capabilities, CapabilityRange, Platform, PlatformFamily, features_of, ranked_table

EXAMPLES = ("m1", "m2", "m3", "m4", "m5")
parse_capability = ranked_table("mps", {f"m{i}": i for i in range(1, 6)}, EXAMPLES)

# Apple's Metal feature set tables: Apple7 = M1 family, Apple8 = M2, Apple9 = M3 and M4. llama.cpp's Metal
# backend (ggml-metal) enables simdgroup matrix multiply on supportsFamily(Apple7) and bfloat on Apple6 or
# Metal3; a family includes every earlier one.
_M1_TO_M4 = CapabilityRange(parse_capability("m1"), parse_capability("m4"))
FEATURES: dict[str, Capabilities] = {"simdgroup_matrix": _M1_TO_M4, "bf16": _M1_TO_M4}


def chip_name() -> str:
    out = subprocess.run(
        ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=2
    )
    return out.stdout.strip()  # "Apple M3 Max"


def generation(brand: str) -> str:
    m = re.search(r"\bM(\d)\b", brand)
    if not m:
        raise ValueError(f"cannot tell the Apple silicon generation of {brand!r}; expected e.g. 'Apple M3'")
    return f"m{m.group(1)}"


def describe(cap, *, device_name: str, device_count: int = 1, simulated: bool = False) -> Platform:
    return Platform(
        name="mps",
        vendor="apple",
        device_type="mps",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="MPS",
        dist_backend="gloo",
        fp8_dtype=None,
        dtypes=("float32", "float16", "bfloat16"),
        triton=False,
        features=features_of(FEATURES, cap),
        simulated=simulated,
    )


def probe() -> Platform | None:
    if _host.system() != "Darwin" or _host.machine() != "arm64":
        return None
    brand = chip_name()
    return describe(parse_capability(generation(brand)), device_name=brand)


FAMILY = PlatformFamily("mps", probe, parse_capability, describe, EXAMPLES)
