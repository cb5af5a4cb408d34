"""Resolution and binding: choosing a kernel for (op, spec, platform) once, with a reason for every
candidate, and handing back a callable that costs nothing more than the kernel itself.

Order: ANYACCEL_KERNELS overrides, then filters (platform, capability, packages, dtype, the kernel's own
predicate), then vendor kernels by priority and by the narrower capability range, then the portable Triton
provider, then the torch reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from anyaccel.platforms.base import CapabilityRange, Platform

from . import compile as _compile
from . import context
from .errors import ResolutionError, SimulatedPlatformError, StrictModeError
from .ops.base import OpDef
from .registry import ANY, Kernel, load_target, missing_distribution


@dataclass(frozen=True)
class Candidate:
    kernel: Kernel
    accepted: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.kernel.name,
            "provider": self.kernel.provider,
            "accepted": self.accepted,
            "reason": self.reason,
        }


@dataclass
class Resolution:
    """The outcome of resolving one op: the chosen kernel (None if nothing fits) and why each candidate was
    accepted or rejected, in ranking order."""

    op: str
    spec: Any
    platform: Platform
    selected: Kernel | None
    candidates: list[Candidate]
    error: str = ""
    _fn: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def fn(self) -> Callable[..., Any]:
        """The bound kernel: the target function itself (no wrapper) unless ANYACCEL_VALIDATE=1."""
        if self._fn is None:
            self._fn = _bind(self)
        return self._fn

    def prepare_weights(self, weights: dict[str, Any]) -> dict[str, Any]:
        """Load-time constants (the op's OpDef.weights, by argument name) in the layout the selected kernel
        reads: its `prepare` hook's result, or the same tensors when it reads the contract's layout.
        Call once after loading and pass the result to every call of `fn`."""
        if self.selected is None:
            raise ResolutionError(self.error)
        return prepare_weights(self.selected, self.spec, weights)

    def plan(self, metadata: Any) -> None:
        """Run the selected kernel's per-batch planner, if it has one (attention kernels with plan/run)."""
        planner = getattr(self.fn, "anyaccel_plan", None)
        if planner is not None:
            planner(metadata)

    def to_json(self) -> dict[str, Any]:
        return {
            "selected": self.selected.name if self.selected else None,
            "provider": self.selected.provider if self.selected else None,
            "candidates": [c.to_json() for c in self.candidates],
            **({"error": self.error} if self.error else {}),
        }


def runs_on(k: Kernel, platform: Platform) -> bool:
    """Whether the platform is one the kernel is built for (capability aside)."""
    return platform.triton if k.needs_triton else (platform.name in k.platforms or ANY in k.platforms)


def _platform_reason(k: Kernel, platform: Platform, relaxed: bool) -> str | None:
    """Why the kernel cannot run on this platform (None if it can). `relaxed` lets a kernel that can
    execute off its platforms (Triton's interpreter, MLX's CPU build) run for `anyaccel check -p`."""
    if not runs_on(k, platform):
        where = (
            "platforms where Triton runs"
            if k.needs_triton
            else ", ".join(sorted(k.platforms)) or "no platform"
        )
        if relaxed and k.off_platform is not None:
            return k.off_platform()
        return f"runs on {where}; this platform is {platform.name}"
    if k.capability is None or (relaxed and platform.name not in k.platforms and not k.needs_triton):
        return None
    cap = platform.capability
    if isinstance(k.capability, CapabilityRange):
        ok = cap in k.capability
        want = str(k.capability)
    else:
        ok = cap in k.capability
        want = ", ".join(sorted(str(c) for c in k.capability))
    return None if ok else f"needs {platform.name} capability {want}; this device is {cap}"


def _reject_reason(k: Kernel, spec: Any, platform: Platform, relaxed: bool) -> str | None:
    reason = _platform_reason(k, platform, relaxed)
    if reason:
        return reason
    missing = [d for d in k.requires if missing_distribution(d)]
    if missing:
        return f"needs package{'s' if len(missing) > 1 else ''} {', '.join(missing)} (not installed)"
    dtype = getattr(spec, "dtype", None)
    if k.dtypes and dtype is not None and dtype not in k.dtypes:
        return f"dtype {str(dtype).removeprefix('torch.')} not supported (has {_dtypes(k)})"
    layout = getattr(spec, "kv_layout", None)
    if k.kv_layout and layout and layout != k.kv_layout:
        return f"reads KV layout {k.kv_layout}; the cache is {layout}"
    block_size = getattr(spec, "block_size", None)
    if k.kv_block_sizes and block_size is not None and block_size not in k.kv_block_sizes:
        sizes = "/".join(map(str, sorted(k.kv_block_sizes)))
        return f"reads KV blocks of {sizes} tokens; the cache's hold {block_size}"
    if k.supports is not None:
        try:
            return k.supports(spec, platform)
        except Exception as exc:  # a buggy predicate rejects its own kernel, never the resolution
            return f"supports() raised {type(exc).__name__}: {exc}"
    return None


def _dtypes(k: Kernel) -> str:
    return ", ".join(sorted(str(d).removeprefix("torch.") for d in k.dtypes))


def rank(kernels: list[Kernel]) -> list[Kernel]:
    return sorted(kernels, key=lambda k: (k.tier, -k.priority, k.capability_width, k.name))


def resolve(
    op: str, spec: Any = None, platform: Platform | None = None, *, provider: str | None = None
) -> Resolution:
    """Choose the kernel for `op`. spec None: the op's default spec for the platform. `provider` restricts
    candidates to one provider and lets its kernels run off-platform where they can (used by `check`).
    Cached per (op, spec, platform, provider). A spec that breaks the op contract raises ContractError; a
    spec no kernel can serve gives a Resolution whose `error` says why (binding it raises)."""
    ctx = context.get()
    opdef = ctx.op(op)
    platform = platform or ctx.platform
    spec = spec if spec is not None else opdef.default_spec(platform)
    key = (op, spec, platform, provider)
    hit = ctx.resolutions.get(key)
    if hit is None:
        hit = ctx.resolutions[key] = _resolve(ctx, opdef, spec, platform, provider)
    return hit


def _resolve(
    ctx: context.Context, opdef: OpDef, spec: Any, platform: Platform, provider: str | None
) -> Resolution:
    opdef.check_spec(spec)
    overrides = ctx.settings.kernels
    forced = overrides.forced.get(opdef.name)
    forbidden = overrides.forbidden.get(opdef.name, frozenset())
    kernels = rank([k for k in ctx.kernels_for(opdef.name) if provider is None or k.provider == provider])
    known = {k.name for k in ctx.kernels_for(opdef.name)}
    error = ""
    if forced and forced not in known:
        registered = ", ".join(sorted(known))
        error = f"ANYACCEL_KERNELS forces {forced} for {opdef.name}, which is not registered ({registered})"
    candidates: list[Candidate] = []
    selected: Kernel | None = None
    for k in kernels:
        if k.name in forbidden:
            reason: str | None = "forbidden by ANYACCEL_KERNELS"
        elif forced and k.name != forced:
            reason = f"ANYACCEL_KERNELS forces {forced}"
        else:
            reason = _reject_reason(k, spec, platform, relaxed=provider is not None)
        accepted = reason is None and selected is None
        if accepted:
            selected = k
        candidates.append(Candidate(k, accepted, reason or ("selected" if accepted else "lower rank")))
    if selected is None and not error:
        if forced:
            why = next(c.reason for c in candidates if c.kernel.name == forced)
            error = f"ANYACCEL_KERNELS forces {forced} for {opdef.name}, but it cannot run: {why}"
        else:
            why = "; ".join(f"{c.kernel.name}: {c.reason}" for c in candidates) or "no kernel is registered"
            error = (
                f"no kernel for {opdef.name} on {platform.name} ({platform.capability}) with {spec}: {why}"
            )
    res = Resolution(opdef.name, spec, platform, selected, candidates, error)
    if (
        ctx.settings.strict
        and selected is not None
        and selected.tier == 2
        and platform.device_type != "cpu"
        and provider is None
        and selected.name != forced  # asking for the reference by name is not a fallback
    ):
        raise StrictModeError(
            f"{opdef.name}: only the torch reference can serve {spec} on {platform.name} "
            "(ANYACCEL_STRICT=1 forbids reference fallbacks on accelerators)"
        )
    return res


def _bind(res: Resolution) -> Callable[..., Any]:
    if res.selected is None:
        raise ResolutionError(res.error)
    if res.platform.simulated:
        return _simulated(res.op, res.selected, res.platform)
    fn = instantiate(res.selected, res.spec, res.platform)
    ctx = context.get()
    if ctx.settings.validate:
        return _validating(ctx.op(res.op), res.spec, fn)
    return fn


def prepare_weights(kernel: Kernel, spec: Any, weights: dict[str, Any]) -> dict[str, Any]:
    if kernel.prepare is None:
        return dict(weights)
    prepared = load_target(kernel.prepare)(spec, dict(weights))
    if set(prepared) != set(weights):
        raise ValueError(f"{kernel.name}: prepare returned {sorted(prepared)}, expected {sorted(weights)}")
    return prepared


def instantiate(kernel: Kernel, spec: Any, platform: Platform) -> Callable[..., Any]:
    """Import the kernel's target (calling it first if it is a factory) and make it compile-friendly."""
    fn = kernel.load()
    if kernel.factory:
        fn = fn(spec, platform)
    _compile.register(context.get().op(kernel.op), kernel, fn)
    return fn


def bind(op: str, spec: Any = None, platform: Platform | None = None) -> Callable[..., Any]:
    """The kernel for `op` as a plain callable with the op's signature. Resolution happens here, once;
    calling the result does no lookup. Raises ResolutionError naming every rejected candidate."""
    return resolve(op, spec, platform).fn


def _simulated(op: str, kernel: Kernel, platform: Platform) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise SimulatedPlatformError(
            f"{op}: {kernel.name} was selected for the simulated platform {platform.name} "
            f"({platform.capability}); simulated platforms plan and explain but cannot run kernels"
        )

    return run


def _validating(opdef: OpDef, spec: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        opdef.check_args(spec, *args, **kwargs)
        return fn(*args, **kwargs)

    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
