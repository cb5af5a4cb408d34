"""The environment variables anyaccel reads, parsed in one place.

ANYACCEL_PLATFORM  force a platform by name (cpu, cuda, rocm, npu, xpu, mps, musa, or a plugin's)
ANYACCEL_PLUGINS   comma-separated allowlist of plugin names; "none" keeps only the built-ins
ANYACCEL_KERNELS   per-op overrides: "attention.decode=triton.paged_decode,moe.experts=!aiter.fused_moe"
ANYACCEL_STRICT    "1": plugin failures and reference fallbacks on an accelerator become errors
ANYACCEL_SIMULATE  "<platform>:<capability>", e.g. cuda:sm_100, rocm:gfx950, npu:ascend910b: plan and explain
ANYACCEL_SIMULATE_WITH  with ANYACCEL_SIMULATE: distributions to plan as if installed ("flashinfer-python,
                   flash-attn-4"), or "all" (every distribution a registered kernel requires)
ANYACCEL_EMULATE   "<platform>:<capability>": the platform as described, tensors on the host CPU, vendor APIs
                   replaced by the owning plugin's emulator, so kernels really run
ANYACCEL_VALIDATE  "1": every bound call checks its arguments against the op contract
ANYACCEL_PROBE_TIMEOUT  seconds a plugin's import, availability check or platform probe may take (default 20);
                   past it the plugin is recorded as failed and anyaccel goes on
ANYACCEL_DIST_TIMEOUT  seconds a rank waits for the others in joining the group and in every collective
                   (default 120); past it the waiting ranks end with an error naming it (a peer that stopped
                   answering, SIGSTOP or a hang, ends them like one that died)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .deadline import DEFAULT_SECONDS

VARIABLES = (
    "ANYACCEL_PLATFORM",
    "ANYACCEL_PLUGINS",
    "ANYACCEL_KERNELS",
    "ANYACCEL_STRICT",
    "ANYACCEL_SIMULATE",
    "ANYACCEL_SIMULATE_WITH",
    "ANYACCEL_EMULATE",
    "ANYACCEL_VALIDATE",
    "ANYACCEL_PROBE_TIMEOUT",
    "ANYACCEL_DIST_TIMEOUT",
)
FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False}
FLAG_VALUES.update({"off": False, "": False})
ALL_PACKAGES = "all"  # ANYACCEL_SIMULATE_WITH=all
# Long enough for ranks that load a large checkpoint at different speeds, far shorter than torch's 30 min
DIST_TIMEOUT_S = 120.0


def _assign(values: Mapping[str, str | None]) -> None:
    for var, value in values.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


@contextlib.contextmanager
def environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or with None, unset) environment variables for a block; the previous values come back after.
    Plugins use it for a vendor library that reads its settings from the environment when called."""
    previous = {var: os.environ.get(var) for var in changes}
    _assign(changes)
    try:
        yield
    finally:
        _assign(previous)


@contextlib.contextmanager
def override(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or with None, unset) ANYACCEL_* variables for a block, rebuilding anyaccel's state on entry and
    on exit; the previous values come back after, so an in-process caller (tests, notebooks, the CLI called
    as a function) is left as it was. No changes: nothing is rebuilt."""
    from anyaccel import context

    if not changes:
        yield
        return
    try:
        with environ(changes):
            context.reset()
            yield
    finally:
        context.reset()  # after environ() has put the previous values back


def cache_dir() -> Path:
    """Where anyaccel keeps what it builds once per machine (compiled kernels, tuning tables, the demo
    checkpoint, converted tokenizers): $XDG_CACHE_HOME/anyaccel, else ~/.cache/anyaccel."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anyaccel"


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value not in FLAG_VALUES:
        raise ValueError(f"{name}={os.environ[name]!r}: expected 1 or 0 (also true/false, yes/no, on/off)")
    return FLAG_VALUES[value]


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name}={text!r}: expected a positive number of seconds, e.g. {default:g}")
    return value


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
    simulate_with: frozenset[str] = frozenset()  # may hold ALL_PACKAGES
    emulate: str | None = None
    probe_timeout: float = DEFAULT_SECONDS
    dist_timeout: float = DIST_TIMEOUT_S

    def asks_for(self, platform: str) -> bool:
        """Whether `platform` is the one named by ANYACCEL_PLATFORM, ANYACCEL_SIMULATE or ANYACCEL_EMULATE:
        a vendor plugin is active then even where its runtime is not installed (plans, emulators)."""
        named = (self.simulate or "", self.emulate or "")
        return self.platform == platform or any(t.split(":", 1)[0].strip().lower() == platform for t in named)

    @classmethod
    def from_environ(cls) -> Settings:
        allow = os.environ.get("ANYACCEL_PLUGINS", "").strip()
        plugins = None
        if allow:
            names = {p.strip() for p in allow.split(",") if p.strip()}
            plugins = frozenset() if names == {"none"} else frozenset(names)
        simulate = os.environ.get("ANYACCEL_SIMULATE", "").strip() or None
        emulate = os.environ.get("ANYACCEL_EMULATE", "").strip() or None
        with_ = frozenset(
            p.strip() for p in os.environ.get("ANYACCEL_SIMULATE_WITH", "").split(",") if p.strip()
        )
        if simulate and emulate:
            raise ValueError(
                f"ANYACCEL_SIMULATE={simulate} and ANYACCEL_EMULATE={emulate} are exclusive: simulating "
                "plans for a platform, emulating runs kernels on it; choose one"
            )
        if with_ and not simulate:
            raise ValueError(
                "ANYACCEL_SIMULATE_WITH (--with) plans with packages that are not installed and needs "
                "ANYACCEL_SIMULATE (--simulate)"
            )
        return cls(
            platform=os.environ.get("ANYACCEL_PLATFORM", "").strip().lower() or None,
            plugins=plugins,
            kernels=KernelOverrides.parse(os.environ.get("ANYACCEL_KERNELS", "")),
            strict=_flag("ANYACCEL_STRICT"),
            simulate=simulate,
            validate=_flag("ANYACCEL_VALIDATE"),
            simulate_with=with_,
            emulate=emulate,
            probe_timeout=_seconds("ANYACCEL_PROBE_TIMEOUT", DEFAULT_SECONDS),
            dist_timeout=_seconds("ANYACCEL_DIST_TIMEOUT", DIST_TIMEOUT_S),
        )
