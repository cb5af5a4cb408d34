"""CPU: always present; capability is the set of ISA extensions kernels may rely on, and those ISA flags are
its hardware features (FEATURES maps the kernel's /proc/cpuinfo names onto them):
    avx2, avx512f, avx512_bf16, avx512_fp16   x86 vector extensions
    amx_tile, amx_bf16                         x86 Advanced Matrix Extensions (tiles; bf16 tile multiply)
    neon, sve                                  Arm Advanced SIMD and Scalable Vector Extension
"""

from __future__ import annotations

import platform as _host

from .base import Capability, Platform, PlatformFamily

# /proc/cpuinfo name -> feature. x86 names: Linux arch/x86/include/asm/cpufeatures.h ("avx512_bf16",
# "amx_tile", ...). arm64 names: arch/arm64/kernel/cpuinfo.c, which calls Advanced SIMD "asimd"; "neon" is
# the 32-bit Arm kernel's name for it.
FEATURES = {
    "avx2": "avx2",
    "avx512f": "avx512f",
    "avx512_bf16": "avx512_bf16",
    "avx512_fp16": "avx512_fp16",
    "amx_tile": "amx_tile",
    "amx_bf16": "amx_bf16",
    "asimd": "neon",
    "neon": "neon",
    "sve": "sve",
}
KNOWN_FLAGS = tuple(dict.fromkeys(FEATURES.values()))
EXAMPLES = ("avx2", "avx512f+amx_bf16", "neon")


def _cpuinfo_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset({"neon"}) if _host.machine().lower() in ("arm64", "aarch64") else frozenset()


def parse_capability(text: str) -> Capability:
    flags = frozenset(f for f in text.strip().lower().replace(",", "+").split("+") if f)
    unknown = flags - set(KNOWN_FLAGS)
    if unknown:
        raise ValueError(f"unknown cpu ISA flag(s) {sorted(unknown)}; known: {', '.join(KNOWN_FLAGS)}")
    return Capability("cpu", "+".join(sorted(flags)) or "baseline", 0, flags)


def describe(
    cap: Capability, *, device_name: str, device_count: int = 1, simulated: bool = False
) -> Platform:
    return Platform(
        name="cpu",
        vendor="generic",
        device_type="cpu",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="CPU",
        dist_backend="gloo",
        fp8_dtype="float8_e4m3fn",
        dtypes=("float32", "bfloat16", "float16"),
        triton=False,
        features=cap.flags,
        simulated=simulated,
    )


def probe() -> Platform:
    flags = {FEATURES[f] for f in _cpuinfo_flags() if f in FEATURES}
    cap = Capability("cpu", "+".join(sorted(flags)) or "baseline", 0, frozenset(flags))
    return describe(cap, device_name=_host.processor() or _host.machine())


FAMILY = PlatformFamily("cpu", probe, parse_capability, describe, EXAMPLES)
