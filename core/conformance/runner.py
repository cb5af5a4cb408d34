"""Running kernels against the oracle: the engine behind `anyaccel check` and the pytest plugin."""

from __future__ import annotations

import copy
import inspect
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from anyaccel import context
from anyaccel.dispatch import instantiate, prepare_weights, rank, reject_reason, runs_on
from anyaccel.ops.base import OpDef
from anyaccel.platforms.base import Platform
from anyaccel.registry import Kernel
from anyaccel.targets import TargetError

from .capture import check_replay
from .case import Case, Comparison
from .cases import cases_for
from .compare import outputs
from .selection import Selection


@dataclass
class CaseResult:
    case: str
    status: str  # passed | failed | skipped
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    detail: str = ""
    family: str = ""  # the case's family in reports: its compute dtype, "large" cases apart
    seconds: float = 0.0


def verdict(case_id: str, compared: dict[str, Comparison]) -> CaseResult:
    """A case's result from its per-output comparisons."""
    ok = all(c.ok for c in compared.values())
    worst_abs = max((c.max_abs for c in compared.values()), default=0.0)
    worst_rel = max((c.max_rel for c in compared.values()), default=0.0)
    bad = [
        f"{n} (max abs {c.max_abs:.3g}, max rel {c.max_rel:.3g}{': ' + c.sample if c.sample else ''})"
        for n, c in compared.items()
        if not c.ok
    ]
    detail = "" if ok else f"out of tolerance: {'; '.join(bad)}"
    return CaseResult(case_id, "passed" if ok else "failed", worst_abs, worst_rel, detail)


@dataclass
class KernelReport:
    kernel: Kernel
    device: str
    results: list[CaseResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def skip_reasons(self) -> dict[str, int]:
        """{reason: number of cases skipped for it}, most frequent first."""
        counts = Counter(r.detail for r in self.results if r.status == "skipped")
        return dict(counts.most_common())

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
            "skip_reasons": self.skip_reasons(),
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
    reason = skip_reason(kernel, case, platform, relaxed)
    if reason:
        return CaseResult(case.id, "skipped", detail=reason)
    if case.world_size > 1:
        from .distributed import run_distributed_case

        return run_distributed_case(kernel, case)
    opdef = context.get().op(case.op)
    args, kwargs = case.make(case.seed)
    oracle_args, oracle_kwargs = copy.deepcopy((args, kwargs))
    want = outputs(opdef, oracle_args, oracle_kwargs, case.oracle(*oracle_args, **oracle_kwargs))
    if case.spec not in fns:
        try:
            fns[case.spec] = instantiate(kernel, case.spec, platform)
        except TargetError as exc:
            return CaseResult(case.id, "failed", detail=str(exc))
    dargs, dkwargs = to_device(args, device), to_device(kwargs, device)
    if kernel.prepare is not None:
        dargs, dkwargs = with_prepared_weights(opdef, kernel, case.spec, dargs, dkwargs)
    try:
        got = outputs(opdef, dargs, dkwargs, fns[case.spec](*dargs, **dkwargs))
    except Exception as exc:
        return CaseResult(case.id, "failed", detail=f"raised {type(exc).__name__}: {str(exc)[:200]}")
    result = verdict(case.id, case.compare_outputs(got, want))
    if kernel.capturable and result.status == "passed":
        following = to_device(case.make(case.seed + 1), device)
        problem = check_replay(opdef, fns[case.spec], (dargs, dkwargs), following)
        if problem and not problem.startswith("skip:"):
            return CaseResult(case.id, "failed", detail=f"host graph: {problem}")
    return result


def case_family(case: Case) -> str:
    """How reports group cases: by compute dtype ("bfloat16"), with large cases apart ("bfloat16 large")."""
    dtype = getattr(case.spec, "dtype", None)
    name = str(dtype).removeprefix("torch.") if dtype is not None else "any"
    return f"{name} large" if case.large else name


def skip_reason(kernel: Kernel, case: Case, platform: Platform, relaxed: bool) -> str | None:
    """Why `case` is not run for `kernel` here (None if it is): known before running anything, so a suite
    can tell at collection time whether anything at all will be checked."""
    reason = reject_reason(kernel, case.spec, platform, relaxed, context.get().assumed)
    if reason:
        return reason
    if case.large and (platform.emulated or not runs_on(kernel, platform)):
        return (
            "large case: runs where the kernel runs natively, not "
            "in an interpreter, a CPU build or an emulator standing in for its device"
        )
    return None


def kernels_to_check(selection: Selection, platform: Platform) -> list[tuple[Kernel, str]]:
    """(kernel, device) pairs: every selected kernel that can run here and, when the selection names a
    provider, kernel or plugin, those that can execute off their platforms (on CPU tensors)."""
    ctx = context.get()
    chosen = []
    for name in [ctx.op(selection.op).name] if selection.op else sorted(ctx.ops):
        for k in rank(ctx.kernels_for(name)):
            if not selection.matches(k, ctx.kernel_owner[k.name].name):
                continue
            if runs_on(k, platform):
                chosen.append((k, platform.torch_device_type))
            elif selection.relaxed and k.off_platform is not None and k.off_platform() is None:
                chosen.append((k, "cpu"))
    return chosen


def nothing_to_check(selection: Selection, platform: Platform) -> str:
    """Why no case can run for what was asked: the kernels registered for it and why each cannot run here,
    or that none is registered (with the state of the plugins)."""
    ctx = context.get()
    asked = selection.describe()
    where = f"{platform.name} ({platform.capability}{', emulated' if platform.emulated else ''})"
    registered = [
        k
        for name in ([ctx.op(selection.op).name] if selection.op else sorted(ctx.ops))
        for k in ctx.kernels.get(name, [])
        if selection.matches(k, ctx.kernel_owner[k.name].name)
    ]
    if not registered:
        plugins = "; ".join(
            f"{i.name}: {i.status}" + (f" ({i.reason})" if i.reason else "")
            for i in ctx.plugins.infos
            if not i.builtin
        )
        return f"nothing to check for {asked}: no such kernel is registered (plugins: {plugins or 'none'})"
    lines = [f"nothing to check for {asked} on {where}; registered:"]
    for k in registered:
        owner = ctx.kernel_owner[k.name]
        if owner.status != "active":
            why = f"plugin {owner.name} is {owner.status}: {owner.reason}"
        elif not runs_on(k, platform):
            runs = ", ".join(sorted(k.platforms)) or "platforms where Triton runs"
            off = k.off_platform() if k.off_platform is not None else None
            if k.off_platform is None:
                why = f"runs on {runs}; this platform is {platform.name}"
            elif off:
                why = f"runs on {runs}; off its platforms: {off}"
            else:
                why = f"runs on {runs}; `--provider {k.provider}` runs it here off its platforms"
        else:
            why = "every case was skipped (see the skip reasons)"
        lines.append(f"  {k.name}: {why}")
    families = sorted({p for k in registered for p in k.platforms} - {platform.name, "*"})
    if families:
        lines.append(
            "To check kernels of another platform here, emulate it: ANYACCEL_EMULATE="
            f"{families[0]}:<capability> (or --emulate), with the owning plugin's emulators."
        )
    return "\n".join(lines)


def check(
    op: str | None = None,
    provider: str | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
    kernel: str | None = None,
    plugin: str | None = None,
) -> list[KernelReport]:
    """Run every case of every kernel `kernels_to_check` yields for the Selection these arguments make."""
    selection = Selection(op, provider, kernel, plugin)
    platform = context.get().platform
    if platform.simulated:
        raise ValueError("anyaccel check runs kernels and cannot use a simulated platform")
    reports = []
    for k, device in progress(kernels_to_check(selection, platform)):
        report = KernelReport(k, device)
        fns: dict[Any, Callable[..., Any]] = {}
        cases = cases_for(k.op)
        if not cases:
            report.results.append(CaseResult("-", "failed", detail=f"no conformance cases exist for {k.op}"))
        for case in cases:
            start = time.perf_counter()
            result = run_case(k, case, platform, device, selection.relaxed, fns)
            result.family, result.seconds = case_family(case), time.perf_counter() - start
            report.results.append(result)
        reports.append(report)
    return reports
