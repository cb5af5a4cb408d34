"""The environment variables anyaccel reads, parsed in one place.

ANYACCEL_PLATFORM  force a platform by name (cpu, cuda, rocm, npu, xpu, mps, musa, or a plugin's)
ANYACCEL_PLUGINS   comma-separated allowlist of plugin names; "none" keeps only the built-ins
ANYACCEL_KERNELS   per-op overrides: "attention.decode=triton.paged_decode,moe.experts=!aiter.fused_moe"
ANYACCEL_STRICT    "1": plugin failures and reference fallbacks on an accelerator become errors
ANYACCEL_SIMULATE  "<platform>:<capability>", e.g. cuda:sm_100, rocm:gfx950, npu:ascend910b
ANYACCEL_VALIDATE  "1": every bound call checks its arguments against the op contract
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

VARIABLES = (
    "ANYACCEL_PLATFORM",
    "ANYACCEL_PLUGINS",
    "ANYACCEL_KERNELS",
    "ANYACCEL_STRICT",
    "ANYACCEL_SIMULATE",
    "ANYACCEL_VALIDATE",
)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class KernelOverrides:
    forced: dict[str, str] = field(default_factory=dict)  # op -> kernel name
    forbidden: dict[str, frozenset[str]] = field(default_factory=dict)  # op -> kernel names

    @classmethod
    def parse(cls, text: str) -> KernelOverrides:
        forced: dict[str, str] = {}
        forbidden: dict[str, set[str]] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            op, sep, kernel = item.partition("=")
            op, kernel = op.strip(), kernel.strip()
            if not sep or not op or not kernel.lstrip("!"):
                raise ValueError(
                    f"ANYACCEL_KERNELS entry {item!r}: expected 'op=kernel' or 'op=!kernel', "
                    "e.g. attention.decode=triton.paged_decode"
                )
            if kernel.startswith("!"):
                forbidden.setdefault(op, set()).add(kernel[1:].strip())
            elif forced.setdefault(op, kernel) != kernel:
                raise ValueError(f"ANYACCEL_KERNELS forces two kernels for {op}: {forced[op]} and {kernel}")
        return cls(forced, {op: frozenset(names) for op, names in forbidden.items()})


@dataclass(frozen=True)
class Settings:
    platform: str | None
    plugins: frozenset[str] | None  # None: all installed plugins
    kernels: KernelOverrides
    strict: bool
    simulate: str | None
    validate: bool

    @classmethod
    def from_environ(cls) -> Settings:
        allow = os.environ.get("ANYACCEL_PLUGINS", "").strip()
        plugins = None
        if allow:
            names = {p.strip() for p in allow.split(",") if p.strip()}
            plugins = frozenset() if names == {"none"} else frozenset(names)
        return cls(
            platform=os.environ.get("ANYACCEL_PLATFORM", "").strip().lower() or None,
            plugins=plugins,
            kernels=KernelOverrides.parse(os.environ.get("ANYACCEL_KERNELS", "")),
            strict=_flag("ANYACCEL_STRICT"),
            simulate=os.environ.get("ANYACCEL_SIMULATE", "").strip() or None,
            validate=_flag("ANYACCEL_VALIDATE"),
        )
