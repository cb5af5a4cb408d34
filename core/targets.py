"""Loading a kernel's target and checking it against its op contract, at bind time.

A record names its target as "module:function"; nothing is imported until the kernel is selected. Then the
target must import, and the callable it yields (a factory's product for factory kernels) must have exactly
the contract's signature: the same parameter names, in the same order, of the same kinds, with the same
defaults. A kernel that fails either check is rejected with a `TargetError` naming the kernel, its plugin and
the error, and the dispatcher binds the next candidate (under ANYACCEL_STRICT=1 the error is raised).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from .errors import AnyaccelError


class TargetError(AnyaccelError):
    """A selected kernel's target cannot be imported, its factory failed, or its signature is not the
    op contract's. The message names the kernel, its plugin and the error."""


def load_target(target: str) -> Callable[..., Any]:
    """The object named by "module:attr.attr" (imports the module)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def signature_mismatch(contract: Callable[..., Any], fn: Callable[..., Any]) -> str | None:
    """Why `fn` cannot be called exactly as `contract` is (None if it can). Compared: parameter names, order,
    kinds and defaults. Callables whose signature Python cannot read (some C extensions) are accepted."""
    try:
        got = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    want = inspect.signature(contract)
    g, w = list(got.parameters.values()), list(want.parameters.values())
    if [p.name for p in g] != [p.name for p in w]:
        return f"parameters ({_names(g)}) differ from the contract's ({_names(w)})"
    for gp, wp in zip(g, w, strict=True):
        if gp.kind != wp.kind:
            return f"parameter {gp.name} is {gp.kind.description}, the contract's is {wp.kind.description}"
        if not _same_default(gp.default, wp.default):
            return f"parameter {gp.name} defaults to {_default(gp)}, the contract's to {_default(wp)}"
    return None


def _names(params: list[inspect.Parameter]) -> str:
    return ", ".join(p.name for p in params)


def _default(p: inspect.Parameter) -> str:
    return "nothing (required)" if p.default is inspect.Parameter.empty else repr(p.default)


def _same_default(a: Any, b: Any) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:  # a default whose == is not a bool (a tensor): only identity counts
        return False
