"""An ATen FX graph (from aot_autograd) run as MLX: every node becomes an MLX call, so values stay MLX arrays
from the graph's inputs to its outputs. Inputs are copied into MLX once per call (torch -> MLX always copies,
see convert.py); outputs are handed back zero-copy through DLPack.

Nodes with no MLX lowering make `lower` fail with the list of them, by name. With `fallback=True` such nodes
run through torch instead: their MLX inputs cross to torch zero-copy and their outputs are copied back into
MLX; `MLXGraph.report` counts those copies per call.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import torch
from torch.fx import GraphModule, Node
from torch.fx.node import map_aggregate

from anyaccel import context

from ..convert import to_mx, to_torch
from .aten import ATEN
from .custom import CONTRACTS, Unsupported, contract_of, kv_layout

AUTO_FUNCTIONALIZED = (torch.ops.higher_order.auto_functionalized_v2,)


@dataclass
class Report:
    """What crosses the torch/MLX boundary on every call of a lowered graph."""

    input_copies: int = 0  # graph inputs copied into MLX
    fallback_nodes: list[str] = field(default_factory=list)  # nodes run through torch (fallback=True)
    fallback_copies: int = 0  # tensors copied back into MLX from those nodes in the last call

    def __str__(self) -> str:
        text = f"{self.input_copies} input copies per call"
        if self.fallback_nodes:
            text += (
                f"; {len(self.fallback_nodes)} nodes run through torch ({', '.join(self.fallback_nodes)}) "
                f"with {self.fallback_copies} copies back into MLX per call"
            )
        return text


def _name(target: Any) -> str:
    return (
        str(getattr(target, "_schema", None) and target._schema.name)
        if hasattr(target, "_schema")
        else getattr(target, "__name__", str(target))
    )


def _contract_call(op: str, layout: str) -> Callable[..., Any]:
    opdef = context.get().op(op)
    signature = inspect.signature(opdef.signature)
    lower = CONTRACTS[op]

    def run(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return lower(dict(bound.arguments), layout)

    return run


def _auto_functionalized(op: str, layout: str) -> Callable[..., Any]:
    """auto_functionalized_v2(op, **args, _<arg>_base_index=i, _all_bases=[...]) -> (op's result, *new bases):
    the functional form aot_autograd gives an in-place custom op. Only whole-tensor mutations are lowered."""
    opdef = context.get().op(op)
    lower = CONTRACTS[op]
    signature = inspect.signature(opdef.signature)

    def run(target: Any, **kwargs: Any) -> tuple[Any, ...]:
        bases = list(kwargs.pop("_all_bases"))
        args = {}
        for name in signature.parameters:
            if f"_{name}_base_index" in kwargs:
                view_keys = [k for k in kwargs if k.startswith(f"_{name}_") and k != f"_{name}_base_index"]
                if view_keys:
                    raise Unsupported(
                        f"{op}: in-place update of a view of a graph input ({', '.join(view_keys)})"
                    )
                args[name] = bases[kwargs[f"_{name}_base_index"]]
            elif name in kwargs:
                args[name] = kwargs[name]
        bound = signature.bind(**args)
        bound.apply_defaults()
        new_values = lower(dict(bound.arguments), layout)
        for name, value in zip(opdef.mutates, new_values, strict=True):
            bases[kwargs[f"_{name}_base_index"]] = value
        return (None, *bases)

    return run


class MLXGraph:
    """A lowered graph; call it with the graph's inputs (torch tensors and ints) as one list."""

    _boxed_call = True  # aot_autograd passes the inputs as a list it may free

    def __init__(self, gm: GraphModule, fallback: bool = False) -> None:
        self.gm = gm
        self.report = Report()
        self.calls: dict[Node, Callable[..., Any]] = {}
        missing = []
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                self.report.input_copies += 1
            elif node.op == "call_function":
                fn = self._lowering(node)
                if fn is None:
                    missing.append(f"{node.name} ({_name(node.target)})")
                    if fallback:
                        fn = self._through_torch(node)
                if fn is not None:
                    self.calls[node] = fn
            elif node.op not in ("output", "get_attr"):
                missing.append(f"{node.name} ({node.op})")
        if missing and not fallback:
            raise Unsupported(
                "anyaccel_mlx cannot lower these graph nodes to MLX: "
                + "; ".join(missing)
                + ". Pass options={'fallback': True} to run them through torch (with copies)."
            )
        self.report.fallback_nodes = missing

    def _lowering(self, node: Node) -> Callable[..., Any] | None:
        target = node.target
        if target in ATEN:
            return ATEN[target]
        if getattr(target, "__module__", None) == "_operator":
            return target  # getitem and Python arithmetic on sizes
        custom = node.args[0] if target in AUTO_FUNCTIONALIZED else target
        op = contract_of(custom)
        if op not in CONTRACTS:
            return None
        layout = kv_layout(custom) if op.startswith("attention.") else ""
        return (
            _auto_functionalized(op, layout) if target in AUTO_FUNCTIONALIZED else _contract_call(op, layout)
        )

    def _through_torch(self, node: Node) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            targs, tkwargs = map_aggregate(
                (args, kwargs), lambda v: to_torch(v) if isinstance(v, mx.array) else v
            )
            out = node.target(*targs, **tkwargs)

            def back(v: Any) -> Any:
                if isinstance(v, torch.Tensor):
                    self.report.fallback_copies += 1
                    return to_mx(v)
                return v

            return map_aggregate(out, back)

        return run

    def __call__(self, inputs: list[Any]) -> list[Any]:
        env: dict[Node, Any] = {}
        self.report.fallback_copies = 0
        args = iter(inputs)
        inputs_clear = inputs.clear
        result: Any = None
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                value = next(args)
                env[node] = to_mx(value) if isinstance(value, torch.Tensor) else value
            elif node.op == "get_attr":
                env[node] = to_mx(operator.attrgetter(node.target)(self.gm))
            elif node.op == "call_function":
                a, kw = map_aggregate(
                    (node.args, node.kwargs), lambda v: env[v] if isinstance(v, Node) else v
                )
                env[node] = self.calls[node](*a, **kw)
            elif node.op == "output":
                result = map_aggregate(node.args[0], lambda v: env[v] if isinstance(v, Node) else v)
        inputs_clear()
        return [to_torch(v) if isinstance(v, mx.array) else v for v in result]
