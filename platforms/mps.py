"""Apple silicon (Metal). torch runs it as device type "mps"; the anyaccel-mlx plugin runs MLX kernels on it.
Capability is the chip generation m1..m5, read from the CPU brand string without touching Metal."""

from __future__ import annotations

import platform as _host
import re
import subprocess

from .base import Platform, PlatformFamily, ranked_table

EXAMPLES = ("m1", "m2", "m3", "m4", "m5")
parse_capability = ranked_table("mps", {f"m{i}": i for i in range(1, 6)}, EXAMPLES)


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
        simulated=simulated,
    )


def probe() -> Platform | None:
    if _host.system() != "Darwin" or _host.machine() != "arm64":
        return None
    brand = chip_name()
    return describe(parse_capability(generation(brand)), device_name=brand)


FAMILY = PlatformFamily("mps", probe, parse_capability, describe, EXAMPLES)
