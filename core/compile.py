"""torch.compile support without an eager cost.

Eager code calls the bound kernel function directly. For torch.compile, each bound kernel also gets a
torch.library custom op (`anyaccel::<kernel>`) with the op contract's fake implementation, and Dynamo is told
to put that custom op in the graph wherever it meets the kernel function
(`torch.compiler.substitute_in_graph`).
So compiled graphs see one opaque, correctly-shaped node per op, and eager calls never pay the
custom-op dispatcher (~10 us a call).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import torch

from .ops.base import OpDef
from .registry import Kernel

_CUSTOM_OPS: dict[int, Any] = {}  # id(kernel function) -> its custom op
_KEEP: list[Callable[..., Any]] = []  # keeps substituted functions alive so ids stay unique
LIBRARY = "anyaccel"


def custom_op_name(kernel_name: str) -> str:
    return f"{LIBRARY}::{re.sub(r'[^0-9A-Za-z_]', '_', kernel_name)}"


def register(opdef: OpDef, kernel: Kernel, fn: Callable[..., Any]) -> Any:
    """Make `fn` (a kernel for `opdef`) appear as a custom op inside torch.compile (idempotent)."""
    key = id(fn)
    if key in _CUSTOM_OPS:
        return _CUSTOM_OPS[key]
    name = custom_op_name(kernel.name)
    if any(op._qualname == name for op in _CUSTOM_OPS.values()):
        name = f"{name}_{len(_CUSTOM_OPS)}"  # a factory kernel bound for several specs

    def impl(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        return _fresh(out, args)

    impl.__signature__ = inspect.signature(opdef.signature)  # type: ignore[attr-defined]
    impl.__annotations__ = dict(opdef.signature.__annotations__)
    op = torch.library.custom_op(name, impl, mutates_args=opdef.mutates)
    op.register_fake(opdef.fake)
    torch.compiler.substitute_in_graph(fn, skip_signature_check=True)(_caller(op))
    _CUSTOM_OPS[key] = op
    _KEEP.append(fn)
    return op


def custom_op_for(fn: Callable[..., Any]) -> Any:
    return _CUSTOM_OPS.get(id(getattr(fn, "__wrapped__", fn)))


def _caller(op: Any) -> Callable[..., Any]:
    overload = op._opoverload  # Dynamo can place an OpOverload held in a closure; a CustomOpDef it cannot

    def call(*args: Any, **kwargs: Any) -> Any:  # the schema carries the contract's names and defaults
        return overload(*args, **kwargs)

    return call


def _fresh(out: Any, args: tuple[Any, ...]) -> Any:
    """Custom ops may not return an alias of an input; kernels that return one (a no-op rotation, say) are
    given a copy inside the compiled path only."""
    if isinstance(out, torch.Tensor):
        # opaque inputs (a prepared oneDNN weight) have no storage, and no output can alias them
        inputs = {
            a.untyped_storage().data_ptr()
            for a in args
            if isinstance(a, torch.Tensor) and a.layout == torch.strided
        }
        return out.clone() if out.untyped_storage().data_ptr() in inputs else out
    if isinstance(out, tuple):
        return tuple(_fresh(o, args) for o in out)
    return out
