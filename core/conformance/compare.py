"""Comparing kernel outputs with the oracle's."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from anyaccel.ops.base import OpDef

from .case import Tolerance


def outputs(opdef: OpDef, args: tuple[Any, ...], kwargs: dict[str, Any], ret: Any) -> dict[str, Any]:
    """What a call produced: the return value(s), and for in-place ops the mutated arguments by name."""
    out: dict[str, Any] = {}
    if isinstance(ret, tuple):
        out.update({f"out{i}": r for i, r in enumerate(ret)})
    elif ret is not None:
        out["out"] = ret
    if opdef.mutates:
        bound = inspect.signature(opdef.signature).bind(*args, **kwargs)
        out.update({name: bound.arguments[name] for name in opdef.mutates if name in bound.arguments})
    return out


def errors(got: torch.Tensor, want: torch.Tensor, tol: Tolerance) -> tuple[bool, float, float]:
    """(within tolerance, max abs error, max relative error) after promoting both to float64."""
    if tuple(got.shape) != tuple(want.shape):
        return False, float("inf"), float("inf")
    g = got.detach().cpu().to(torch.float64)
    w = want.detach().cpu().to(torch.float64)
    if g.numel() == 0:
        return True, 0.0, 0.0
    nan_mismatch = bool((g.isnan() != w.isnan()).any())
    g, w = g.nan_to_num(0.0), w.nan_to_num(0.0)
    diff = (g - w).abs()
    ok = not nan_mismatch and bool((diff <= tol.atol + tol.rtol * w.abs()).all())
    rel = (diff / (w.abs() + tol.atol)).max().item()
    return ok, diff.max().item(), rel


def compare_all(got: dict[str, Any], want: dict[str, Any], tol_for) -> dict[str, tuple[bool, float, float]]:
    result = {}
    for name, expected in want.items():
        if name not in got:
            result[name] = (False, float("inf"), float("inf"))
        elif isinstance(expected, torch.Tensor):
            result[name] = errors(got[name], expected, tol_for(name))
        else:
            result[name] = (got[name] == expected, 0.0, 0.0)
    return result
