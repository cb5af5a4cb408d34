"""Comparing kernel outputs with the oracle's."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from anyaccel.ops.base import OpDef

from .case import Comparison, Tolerance


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


def errors(got: torch.Tensor, want: torch.Tensor, tol: Tolerance) -> Comparison:
    """Within tolerance, max abs error and max relative error, after promoting both to float64. On failure
    `sample` lists the (at most 3) elements furthest outside the tolerance as `[i, j] got x, expected y`."""
    if tuple(got.shape) != tuple(want.shape):
        return Comparison(
            False, float("inf"), float("inf"), f"shape {list(got.shape)}, expected {list(want.shape)}"
        )
    g = got.detach().cpu().to(torch.float64)
    w = want.detach().cpu().to(torch.float64)
    if g.numel() == 0:
        return Comparison(True, 0.0, 0.0)
    nan_mismatch = g.isnan() != w.isnan()
    gz, wz = g.nan_to_num(0.0), w.nan_to_num(0.0)
    diff = (gz - wz).abs()
    excess = diff - (tol.atol + tol.rtol * wz.abs())
    excess[nan_mismatch] = float("inf")
    ok = not bool((excess > 0).any())
    rel = (diff / (wz.abs() + tol.atol)).max().item()
    return Comparison(ok, diff.max().item(), rel, "" if ok else _worst(g, w, excess))


def _worst(got: torch.Tensor, want: torch.Tensor, excess: torch.Tensor, count: int = 3) -> str:
    flat = excess.flatten()
    picks = flat.topk(min(count, flat.numel())).indices
    shown = []
    for i in picks.tolist():
        if flat[i] <= 0:
            break
        index = list(torch.unravel_index(torch.tensor(i), got.shape)) if got.dim() else []
        where = "[" + ", ".join(str(int(x)) for x in index) + "]"
        shown.append(f"{where} got {got.flatten()[i].item():.6g}, expected {want.flatten()[i].item():.6g}")
    return "; ".join(shown)


def compare_all(got: dict[str, Any], want: dict[str, Any], tol_for) -> dict[str, Comparison]:
    result = {}
    for name, expected in want.items():
        if name not in got:
            result[name] = Comparison(False, float("inf"), float("inf"), "missing from the kernel's outputs")
        elif isinstance(expected, torch.Tensor):
            result[name] = errors(got[name], expected, tol_for(name))
        else:
            same = got[name] == expected
            result[name] = Comparison(
                same, 0.0, 0.0, "" if same else f"got {got[name]!r}, expected {expected!r}"
            )
    return result
