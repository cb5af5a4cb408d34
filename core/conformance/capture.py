"""The kit's check of Kernel.capturable: a kernel that says host graphs may record it must replay exactly.

For each case a capturable kernel passed: record one call into a HostGraph, write the inputs of the case's
next seed into the recorded tensors (weights stay: they are a model's constants), replay, and compare what
the replay produced with an eager call on a copy of the same inputs, bit for bit. A capture the graph
refuses (a host read of tensor data) or a replay that differs fails the case.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import torch

from anyaccel.graphs import HostGraph, NotCapturable, ReplayMismatch
from anyaccel.ops.base import OpDef

from .compare import outputs

Inputs = tuple[tuple[Any, ...], dict[str, Any]]  # (args, kwargs) of one call


def _leaves(value: Any) -> list[Any]:
    """The leaves of a value: tensors and host values, lists and tuples flattened."""
    if isinstance(value, (list, tuple)):
        return [x for item in value for x in _leaves(item)]
    return [value]


def _same_structure(a: Any, b: Any) -> bool:
    """Equal host values, and tensors of equal shape, dtype and strides: what replay may assume."""
    xs, ys = _leaves(a), _leaves(b)
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys, strict=True):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if (x.shape, x.dtype, x.stride()) != (y.shape, y.dtype, y.stride()):
                return False
        elif isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor) or x != y:
            return False
    return True


def check_replay(opdef: OpDef, fn: Callable[..., Any], first: Inputs, second: Inputs) -> str | None:
    """None when a call of fn recorded on `first` and replayed on `second`'s inputs (first's weights kept)
    matches an eager call on those inputs exactly, else what went wrong; "skip: ..." when the seeds'
    inputs differ in shape or host values, where replay does not apply."""
    signature = inspect.signature(opdef.signature)
    now = signature.bind(*first[0], **first[1])
    new = signature.bind(*second[0], **second[1]).arguments
    inputs = [name for name in now.arguments if name not in opdef.weights]
    if any(name not in new or not _same_structure(now.arguments[name], new[name]) for name in inputs):
        return "skip: the next seed's inputs differ in shape or host values"
    args, kwargs = now.args, now.kwargs
    try:
        graph, ret = HostGraph.capture(lambda: fn(*args, **kwargs))
    except NotCapturable as exc:
        return f"declared capturable, but the capture refused it: {exc}"
    recorded = outputs(opdef, args, kwargs, ret)
    for name in inputs:
        for t, u in zip(_leaves(now.arguments[name]), _leaves(new[name]), strict=True):
            if isinstance(t, torch.Tensor):
                t.copy_(u)
    shared = {id(now.arguments[name]): now.arguments[name] for name in opdef.weights if name in now.arguments}
    eager_args, eager_kwargs = copy.deepcopy((args, kwargs), shared)  # inputs copied, weights shared
    try:
        graph.replay()
    except ReplayMismatch as exc:
        return f"replay stopped: {exc}"
    want = outputs(opdef, eager_args, eager_kwargs, fn(*eager_args, **eager_kwargs))
    for name, got in recorded.items():
        for g, w in zip(_leaves(got), _leaves(want[name]), strict=True):
            if isinstance(g, torch.Tensor) and not torch.equal(g.nan_to_num(7.0), w.nan_to_num(7.0)):
                diff = (g.double() - w.double()).abs().max().item()
                return f"replay differs from an eager call on the same inputs ({name}: max |diff| {diff:.3g})"
    return None
