"""OpDef: an op contract. The signature stub's docstring is the contract (shapes, dtypes, layouts, in-place
semantics); every kernel registered for the op has exactly this Python signature.

A *spec* is a small frozen dataclass describing, at bind time, what the caller will pass (dtype, head
counts, quantization scheme, ...). Kernels accept or reject a spec; per-call arguments are not inspected
(unless ANYACCEL_VALIDATE=1), which keeps selection out of the hot path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


class ContractError(ValueError):
    """A spec or an argument breaks an op contract. The message names the op and what was expected."""


@dataclass(frozen=True)
class OpDef:
    """name:         "family.name"
    signature:    stub function; its annotations define the torch.library schema, its docstring the contract
    spec_type:    frozen dataclass type of this op's bind-time spec
    fake:         shape/dtype-only implementation used by torch.compile (same signature as the stub)
    mutates:      names of tensor arguments the op writes in place
    weights:      names of arguments that are load-time constants (weights, their scales and zeros). A
                  kernel may want them in its own layout: its `prepare` hook converts them once, at load
                  time (Resolution.prepare_weights), and the kernel then receives them in that layout.
    check_spec:   raises ContractError when a spec cannot be served by any correct kernel (bind time)
    check_args:   raises ContractError when call arguments break the contract (ANYACCEL_VALIDATE=1 only)
    default_spec: a representative spec for a platform, used by `anyaccel info` / `explain`
    """

    name: str
    signature: Callable[..., Any]
    spec_type: type
    fake: Callable[..., Any]
    default_spec: Callable[[Any], Any]
    mutates: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()
    check_spec: Callable[[Any], None] = field(default=lambda spec: None)
    check_args: Callable[..., None] = field(default=lambda spec, *a, **k: None)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.signature) or ""

    def spec(self, **fields: Any) -> Any:
        return self.spec_type(**fields)


def fail(op: str, message: str) -> ContractError:
    return ContractError(f"{op}: {message}")


def expect(op: str, cond: bool, message: str) -> None:
    if not cond:
        raise fail(op, message)


def expect_tensor(
    op: str,
    name: str,
    t: Any,
    *,
    dims: int | None = None,
    dtype: torch.dtype | None = None,
    shape: tuple[int | None, ...] | None = None,
) -> None:
    """Per-call argument check shared by every op's check_args (None in `shape` means any size). Messages
    are formatted only on failure: kernels that cannot trust their inputs call this on every call."""
    if not isinstance(t, torch.Tensor):
        raise fail(op, f"{name} must be a tensor, got {type(t).__name__}")
    if dims is not None and t.dim() != dims:
        raise fail(op, f"{name} must have {dims} dims, got shape {tuple(t.shape)}")
    if dtype is not None and t.dtype != dtype:
        raise fail(op, f"{name} must be {dtype}, got {t.dtype}")
    if shape is not None:
        size = t.shape
        ok = len(size) == len(shape)
        for want_d, got_d in zip(shape, size, strict=False):
            ok = ok and (want_d is None or want_d == got_d)
        if not ok:
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise fail(op, f"{name} must have shape {want}, got {list(size)}")


def expect_range(op: str, name: str, t: torch.Tensor, low: int, high: int, what: str = "") -> None:
    """Every value of the integer tensor `t` lies in [low, high), compared in t's own width (an int64 id of
    2**32 + 1 is out of range, not id 1). One reduction and one host read: kernels whose reads are indexed by
    these values call it on every call; the op validators (ANYACCEL_VALIDATE=1) call it for the rest."""
    if t.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.aminmax(t))
    if lo < low or hi >= high:
        bad = lo if lo < low else hi
        raise fail(op, f"{name} holds {bad}, outside [{low}, {high}){' ' + what if what else ''}")
