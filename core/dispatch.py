"""Resolution and binding: choosing a kernel for (op, spec, platform) once, with a reason for every
candidate, and handing back a callable that costs nothing more than the kernel itself.

Order: ANYACCEL_KERNELS overrides, then filters (platform, capability, packages, dtype, the kernel's own
predicate), then vendor kernels by priority and by the narrower capability range, then the portable Triton
provider, then the torch reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from anyaccel.platforms.base import CapabilityRange, Platform

from . import compile as _compile
from . import context
from .errors import ResolutionError, SimulatedPlatformError, StrictModeError
from .ops.base import OpDef
from .plugins import describe_exception
from .registry import ANY, Kernel, missing_distribution
from .targets import TargetError, load_target, signature_mismatch


@dataclass(frozen=True)
class Candidate:
    """kernel: the record; accepted: it is the selection; reason: why it was rejected, or "selected" /
    "lower rank"; eligible: it passed every filter (a lower-ranked eligible kernel is bound instead when the
    selection's target fails at bind time)."""

    kernel: Kernel
    accepted: bool
    reason: str
    eligible: bool = False
    note: str = ""  # what its acceptance assumes: packages emulated or assumed installed

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.kernel.name,
            "provider": self.kernel.provider,
            "accepted": self.accepted,
            "reason": self.reason,
            "verified": self.kernel.verified,
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
        """The bound kernel: the target function itself (no wrapper) unless ANYACCEL_VALIDATE=1. A selection
        whose target fails to import or breaks the contract's signature is rejected here, with the reason,
        and the next eligible candidate is bound (ANYACCEL_STRICT=1: TargetError)."""
        if self._fn is None:
            self._fn = _bind(self)
        return self._fn

    def reject_selected(self, reason: str) -> None:
        """Record that the selected kernel cannot be bound and select the next eligible candidate."""
        failed, self.selected = self.selected, None
        for i, c in enumerate(self.candidates):
            if c.kernel is failed:
                self.candidates[i] = Candidate(c.kernel, False, reason)
            elif c.eligible and self.selected is None:
                self.selected = c.kernel
                self.candidates[i] = Candidate(c.kernel, True, f"selected{c.note}", True, c.note)
        if self.selected is None:
            self.error = f"no kernel for {self.op} can be bound; {failed.name if failed else '-'}: {reason}"

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
            "verified": self.selected.verified if self.selected else None,
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
    if k.needs_triton and platform.emulated and k.off_platform is not None:
        # an emulated device keeps its tensors on the host, where Triton runs only in its interpreter
        host = k.off_platform()
        if host:
            return f"emulated {platform.name} keeps tensors on the host: {host}"
    if relaxed and platform.name not in k.platforms and not k.needs_triton:
        return None  # running off its platform: this device's capability and features say nothing
    cap = platform.capability
    if k.capability is not None:
        if isinstance(k.capability, CapabilityRange):
            want = str(k.capability)
        else:
            want = ", ".join(sorted(str(c) for c in k.capability))
        if cap not in k.capability:
            return f"needs {platform.name} capability {want}; this device is {cap}"
    missing = sorted(k.features - platform.features)
    if missing:
        has = ", ".join(sorted(platform.features)) or "none"
        plural = "s" if len(missing) > 1 else ""
        return f"needs hardware feature{plural} {', '.join(missing)} ({cap} has: {has})"
    return None


def reject_reason(
    k: Kernel, spec: Any, platform: Platform, relaxed: bool, assumed: Mapping[str, str] | None = None
) -> str | None:
    """Why `k` cannot serve `spec` on `platform` (None if it can). `assumed` maps distributions to how they
    are provided without being installed (emulated, or assumed for planning); `relaxed` lets a kernel run
    off its platforms where its record allows it."""
    reason = _platform_reason(k, platform, relaxed)
    if reason:
        return reason
    missing = [d for d in k.requires if d not in (assumed or {}) and missing_distribution(d)]
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


def assumption_note(k: Kernel, assumed: Mapping[str, str]) -> str:
    """ " (flashinfer-python: emulated)" for an accepted kernel whose packages are not really installed."""
    notes = [f"{d}: {assumed[d]}" for d in k.requires if d in assumed and missing_distribution(d)]
    return f" ({'; '.join(notes)})" if notes else ""


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
            reason = reject_reason(k, spec, platform, provider is not None, ctx.assumed)
        accepted = reason is None and selected is None
        if accepted:
            selected = k
        note = assumption_note(k, ctx.assumed) if reason is None else ""
        shown = reason or (f"selected{note}" if accepted else "lower rank")
        candidates.append(Candidate(k, accepted, shown, reason is None, note))
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
    ctx = context.get()
    while True:
        if res.selected is None:
            raise ResolutionError(res.error)
        if res.platform.simulated:
            return _simulated(res.op, res.selected, res.platform)
        try:
            fn = instantiate(res.selected, res.spec, res.platform)
            break
        except TargetError as exc:
            if ctx.settings.strict:
                raise
            res.reject_selected(str(exc))
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
    """Import the kernel's target (calling it first if it is a factory), check its signature against the op
    contract and make it compile-friendly. Raises TargetError naming the kernel and its plugin."""
    ctx = context.get()
    opdef = ctx.op(kernel.op)
    owner = ctx.kernel_owner.get(kernel.name)
    where = f"kernel {kernel.name} (plugin {owner.name if owner else '?'}, target {kernel.target})"
    try:
        fn = kernel.load()
    except Exception as exc:
        raise TargetError(f"{where} cannot be imported: {describe_exception(exc)}") from exc
    if kernel.factory:
        try:
            fn = fn(spec, platform)
        except Exception as exc:
            raise TargetError(f"{where}: its factory raised {describe_exception(exc)}") from exc
    mismatch = signature_mismatch(opdef.signature, fn)
    if mismatch:
        raise TargetError(f"{where} does not match the {kernel.op} contract: {mismatch}")
    _compile.register(opdef, kernel, fn)
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
