"""`anyaccel check --targets`: every registered kernel's target imported and checked against its op contract.

A typo in a target, a missing module or a signature that drifted from the contract is otherwise found only
when the kernel is selected on its device. This imports every target whose packages are installed here (or
emulated), checks the signature of plain kernels, of factories and of `prepare` hooks, and builds a factory's
kernel for the op's default spec where the kernel accepts it, to check that kernel's signature too.
"""

from __future__ import annotations

from typing import Any

from anyaccel import context
from anyaccel.dispatch import instantiate, reject_reason
from anyaccel.plugins import describe_exception
from anyaccel.registry import Kernel, missing_distribution
from anyaccel.targets import TargetError, load_target, signature_mismatch

from .selection import Selection


def _factory(spec, platform): ...  # the signature every factory target has


def _prepare(spec, weights): ...  # the signature every prepare hook has


def target_report(selection: Selection) -> list[dict[str, Any]]:
    """One row per selected kernel: status ok | error | unavailable (its packages are not here)."""
    ctx = context.get()
    rows = []
    for name in [ctx.op(selection.op).name] if selection.op else sorted(ctx.ops):
        for k in ctx.kernels_for(name):
            if selection.matches(k, ctx.kernel_owner[k.name].name):
                status, detail = _check(k, ctx)
                row = {"kernel": k.name, "plugin": ctx.kernel_owner[k.name].name, "target": k.target}
                rows.append(row | {"status": status, "detail": detail})
    return rows


def _check(k: Kernel, ctx: context.Context) -> tuple[str, str]:
    missing = [d for d in k.requires if d not in ctx.assumed and missing_distribution(d)]
    if missing:
        return "unavailable", f"needs {', '.join(missing)} (not installed)"
    hooks = [(k.target, _factory if k.factory else ctx.op(k.op).signature)]
    if k.prepare:
        hooks.append((k.prepare, _prepare))
    for target, contract in hooks:
        try:
            fn = load_target(target)
        except Exception as exc:
            return "error", f"{target} cannot be imported: {describe_exception(exc)}"
        mismatch = signature_mismatch(contract, fn)
        if mismatch:
            return "error", f"{target}: {mismatch}"
    if not k.factory:
        return "ok", "imported; signature matches the contract"
    platform = ctx.platform
    spec = ctx.op(k.op).default_spec(platform)
    if reject_reason(k, spec, platform, True, ctx.assumed) is not None:
        return "ok", "factory imported; its kernels are checked when bound"
    try:
        instantiate(k, spec, platform)
    except TargetError as exc:
        return "error", str(exc)
    return "ok", "factory built a kernel for the default spec; signature matches the contract"
