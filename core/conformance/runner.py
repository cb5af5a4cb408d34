"""Running kernels against the oracle: the engine behind `anyaccel check` and the pytest plugin."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from anyaccel import context
from anyaccel.dispatch import _reject_reason, instantiate, prepare_weights, rank, runs_on
from anyaccel.ops.base import OpDef
from anyaccel.platforms.base import Platform
from anyaccel.registry import Kernel

from .case import Case
from .cases import cases_for
from .compare import outputs


@dataclass
class CaseResult:
    case: str
    status: str  # passed | failed | skipped
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    detail: str = ""


def verdict(case_id: str, compared: dict[str, tuple[bool, float, float]]) -> CaseResult:
    """A case's result from its per-output comparisons {name: (ok, max abs err, max rel err)}."""
    ok = all(c[0] for c in compared.values())
    worst_abs = max((c[1] for c in compared.values()), default=0.0)
    worst_rel = max((c[2] for c in compared.values()), default=0.0)
    bad = [n for n, c in compared.items() if not c[0]]
    detail = (
        "" if ok else f"{', '.join(bad)} out of tolerance (max abs {worst_abs:.3g}, max rel {worst_rel:.3g})"
    )
    return CaseResult(case_id, "passed" if ok else "failed", worst_abs, worst_rel, detail)


@dataclass
class KernelReport:
    kernel: Kernel
    device: str
    results: list[CaseResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def to_json(self) -> dict[str, Any]:
        ran = [r for r in self.results if r.status != "skipped"]
        return {
            "name": self.kernel.name,
            "provider": self.kernel.provider,
            "op": self.kernel.op,
            "device": self.device,
            "cases": len(ran),
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "max_abs_err": max((r.max_abs_err for r in ran), default=0.0),
            "max_rel_err": max((r.max_rel_err for r in ran), default=0.0),
            "failures": [{"case": r.case, "detail": r.detail} for r in self.results if r.status == "failed"][
                :10
            ],
        }


def to_device(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def with_prepared_weights(
    opdef: OpDef, kernel: Kernel, spec: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with its load-time constants converted by the kernel's prepare hook, as a
    model's scheme does once after loading."""
    bound = inspect.signature(opdef.signature).bind(*args, **kwargs)
    weights = {name: bound.arguments[name] for name in opdef.weights if name in bound.arguments}
    bound.arguments.update(prepare_weights(kernel, spec, weights))
    return bound.args, bound.kwargs


def run_case(
    kernel: Kernel,
    case: Case,
    platform: Platform,
    device: str,
    relaxed: bool,
    fns: dict[Any, Callable[..., Any]],
) -> CaseResult:
    """One kernel on one case. `fns` caches instantiated kernels per spec (factories build per spec)."""
    reason = _reject_reason(kernel, case.spec, platform, relaxed)
    if reason:
        return CaseResult(case.id, "skipped", detail=reason)
    if case.large and not runs_on(kernel, platform):
        return CaseResult(
            case.id,
            "skipped",
            detail="large case: runs where the kernel runs natively, not "
            "in an interpreter or a CPU build standing in for its device",
        )
    if case.world_size > 1:
        from .distributed import run_distributed_case

        return run_distributed_case(kernel, case)
    opdef = context.get().op(case.op)
    args, kwargs = case.make(case.seed)
    oracle_args, oracle_kwargs = copy.deepcopy((args, kwargs))
    want = outputs(opdef, oracle_args, oracle_kwargs, case.oracle(*oracle_args, **oracle_kwargs))
    if case.spec not in fns:
        fns[case.spec] = instantiate(kernel, case.spec, platform)
    dargs, dkwargs = to_device(args, device), to_device(kwargs, device)
    if kernel.prepare is not None:
        dargs, dkwargs = with_prepared_weights(opdef, kernel, case.spec, dargs, dkwargs)
    try:
        got = outputs(opdef, dargs, dkwargs, fns[case.spec](*dargs, **dkwargs))
    except Exception as exc:
        return CaseResult(case.id, "failed", detail=f"raised {type(exc).__name__}: {str(exc)[:200]}")
    return verdict(case.id, case.compare_outputs(got, want))


def kernels_to_check(op: str | None, provider: str | None, platform: Platform) -> list[tuple[Kernel, str]]:
    """(kernel, device) pairs: every kernel that can run here, or with `provider` that provider's kernels
    wherever they can execute (off-platform kernels run on CPU tensors)."""
    ctx = context.get()
    ops = [ctx.op(op).name] if op else sorted(ctx.ops)
    chosen = []
    for name in ops:
        for k in rank(ctx.kernels_for(name)):
            if provider is not None and k.provider != provider:
                continue
            if runs_on(k, platform):
                chosen.append((k, platform.device_type))
            elif provider is not None and k.off_platform is not None and k.off_platform() is None:
                chosen.append((k, "cpu"))
    return chosen


def check(
    op: str | None = None,
    provider: str | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> list[KernelReport]:
    platform = context.get().platform
    if platform.simulated:
        raise ValueError("anyaccel check runs kernels and cannot use a simulated platform")
    reports = []
    for kernel, device in progress(kernels_to_check(op, provider, platform)):
        report = KernelReport(kernel, device)
        fns: dict[Any, Callable[..., Any]] = {}
        cases = cases_for(kernel.op)
        if not cases:
            report.results.append(
                CaseResult("-", "failed", detail=f"no conformance cases exist for {kernel.op}")
            )
        for case in cases:
            report.results.append(run_case(kernel, case, platform, device, provider is not None, fns))
        reports.append(report)
    return reports
