"""torch.compile backend "anyaccel_mlx": a model's graph runs as MLX.

    model = torch.compile(model, backend="anyaccel_mlx")                          # error on unsupported nodes
    model = torch.compile(model, backend="anyaccel_mlx", options={"fallback": True})  # run them in torch

Dynamo captures the model; aot_autograd turns it into an ATen graph in which anyaccel's ops appear as their
custom ops (core/compile.py) and in-place ops in functional form; lowering.py runs that graph with MLX
(aten.py, custom.py). The backend is found by name through the `torch_dynamo_backends` entry point of this
distribution; inference only (no autograd graph is lowered).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch._dynamo.backends.common import aot_autograd

OPTIONS = ("fallback",)
REPORTS: list[Any] = []  # lowering.Report of every graph lowered in this process, in order


def anyaccel_mlx(
    gm: torch.fx.GraphModule, example_inputs: list[Any], options: dict[str, Any] | None = None
) -> Callable[..., Any]:
    options = dict(options or {})
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"anyaccel_mlx: unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}")

    def compile_forward(fw: torch.fx.GraphModule, inputs: list[Any]) -> Callable[..., Any]:
        from .lowering import MLXGraph

        graph = MLXGraph(fw, fallback=bool(options.get("fallback", False)))
        REPORTS.append(graph.report)
        if graph.report.fallback_nodes:
            warnings.warn(f"anyaccel_mlx: {graph.report}", stacklevel=2)
        return graph

    return aot_autograd(fw_compiler=compile_forward)(gm, example_inputs)
