"""The quantization scheme interface: how a layer creates, post-processes and applies its weights.

A scheme instance serves ONE layer (linear or MoE). The model calls, in order:
    scheme.create_weights(layer, ...)            registers the checkpoint's parameters on `layer`
    (the loader fills them; each parameter carries a `ParamLayout` as `param.anyaccel_layout`)
    scheme.process_weights_after_loading(layer)  converts them once (transposes, repacking, fnuz) and binds
                                                 the anyaccel kernels it will call
    scheme.apply(layer, x, ...)                  the forward pass: bound kernels only, no lookups
Schemes are found by the checkpoint's `quantization_config["quant_method"]` (None: unquantized) through
`linear_scheme()` / `moe_scheme()`. Vendor differences come only from the Platform descriptor's data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module, Parameter

import anyaccel
from anyaccel.errors import StrictModeError
from anyaccel.ops.quant import GemmSpec
from anyaccel.platforms.base import Platform

CHECKPOINT_FP8_NAME = "float8_e4m3fn"  # the format fp8 checkpoints store


@dataclass(frozen=True)
class ParamLayout:
    """How checkpoint tensors map onto a parameter, for loaders that shard (tensor parallel) or merge
    (qkv, gate_up) them.

    output_dim / input_dim: the dim indexed by output / input features, None when the tensor is not split
                            along that feature (per-tensor scales, g_idx has no output dim)
    output_div / input_div: features per stored element along that dim: 8 for packed int4, 128 for 128x128
                            block scales, group_size for group scales, 1 otherwise
    per_shard:              dim 0 holds one entry per merged output shard (per-tensor scales of q, k, v;
                            GPTQ's g_idx of each part, the other dims following these rules shifted by one)
    For MoE parameters dim 0 is the local expert and the rest follows these rules shifted by one.
    """

    output_dim: int | None = 0
    input_dim: int | None = 1
    output_div: int = 1
    input_div: int = 1
    per_shard: bool = False


def add_param(layer: Module, name: str, data: Tensor, layout: ParamLayout) -> Parameter:
    """Register a frozen parameter on `layer` with its layout."""
    param = Parameter(data, requires_grad=False)
    param.anyaccel_layout = layout  # type: ignore[attr-defined]
    layer.register_parameter(name, param)
    return param


def tensor(layer: Module, name: str) -> Tensor:
    """A parameter's tensor by name (typed, unlike Module attribute access)."""
    return getattr(layer, name).data


def replace_param(layer: Module, name: str, data: Tensor) -> None:
    """Swap a parameter's tensor after loading (new dtype or shape), keeping its layout."""
    layout = getattr(getattr(layer, name), "anyaccel_layout", ParamLayout())
    delattr(layer, name)
    add_param(layer, name, data, layout)


class Scheme:
    """Shared by linear and MoE schemes: the parsed quantization_config and the platform it runs on."""

    def __init__(self, config: Mapping[str, Any], platform: Platform | None = None) -> None:
        self.config = dict(config)
        self.platform = platform or anyaccel.get_platform()
        self.resolutions: list[anyaccel.Resolution] = []  # what this scheme bound, for kernel tables
        self.weights: dict[str, Tensor] = {}  # set by bind_weights

    def bind(self, op: str, spec: Any) -> Callable[..., Any]:
        resolution = anyaccel.resolve(op, spec, self.platform)
        self.resolutions.append(resolution)
        return resolution.fn

    def bind_weights(
        self, layer: Module, op: str, spec: Any, params: Mapping[str, str]
    ) -> Callable[..., Any]:
        """Bind `op` and convert, once, the layer's load-time constants into the layout the selected kernel
        reads (its prepare hook). params maps the op's weight arguments to the layer's parameter names.
        The prepared tensors stay in `self.weights` (op argument -> tensor, the layer's parameters' data):
        `apply` passes them from there, with no parameter lookup per call (a decode step makes hundreds)."""
        resolution = anyaccel.resolve(op, spec, self.platform)
        self.resolutions.append(resolution)
        prepared = resolution.prepare_weights({arg: tensor(layer, name) for arg, name in params.items()})
        for arg, name in params.items():
            if prepared[arg] is not tensor(layer, name):
                replace_param(layer, name, prepared[arg])
        self.weights = {arg: tensor(layer, name) for arg, name in params.items()}
        return resolution.fn

    def fp8_dtype(self) -> torch.dtype:
        """The platform's fp8 dtype. Where the hardware has none, a vendor quant.fp8_gemm kernel may still
        take fp8 checkpoints (one that dequantizes their weights at load, when its user asks for it): then
        the checkpoints' own float8_e4m3fn, as storage only. Otherwise a clear error that carries the vendor
        kernels' reasons, which say what the user can do."""
        if self.platform.fp8_dtype:
            return getattr(torch, self.platform.fp8_dtype)
        try:
            gemm = anyaccel.resolve("quant.fp8_gemm", GemmSpec(fp8_dtype=CHECKPOINT_FP8_NAME), self.platform)
        except StrictModeError as exc:  # only the reference would take it, which strict mode refuses
            why = f"; {exc}"
        else:
            if gemm.selected is not None and gemm.selected.tier == 0:
                return getattr(torch, CHECKPOINT_FP8_NAME)
            why = "".join(f"; {c.kernel.name}: {c.reason}" for c in gemm.candidates if c.kernel.tier == 0)
        raise ValueError(
            f"{type(self).__name__}: platform {self.platform.name} "
            f"({self.platform.capability}) has no fp8 dtype{why}"
        )

    def process_weights_after_loading(self, layer: Module) -> None:
        """Convert loaded parameters once and bind kernels. Called exactly once, after loading."""


class LinearScheme(Scheme, ABC):
    """y = x @ W.T + bias for a (possibly merged) linear layer of `input_size` -> sum(output_sizes)."""

    @abstractmethod
    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        """Register the checkpoint parameters. output_sizes: the merged shards' sizes ([q, k, v] or
        [gate, up]; one entry for a plain layer). params_dtype: the activation dtype (bf16, fp16, fp32).
        full_input_size: the whole layer's input size when this rank holds a row-parallel shard of
        `input_size` features (None: the input is not split)."""

    @abstractmethod
    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """x [..., input_size] in params_dtype -> [..., sum(output_sizes)] in params_dtype."""


class MoEScheme(Scheme, ABC):
    """The experts of one MoE layer: parameters w13_weight [E, 2I, H] ([gate; up]) and w2_weight [E, H, I]
    (plus the scheme's scales), applied with moe.experts. create_weights sets `self.spec` (a MoESpec);
    `weight_params()` names the layer parameter behind each weight argument of moe.experts."""

    spec: Any

    @abstractmethod
    def create_weights(
        self,
        layer: Module,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        top_k: int,
        params_dtype: torch.dtype,
        activation: str = "silu",
        expert_parallel: bool = False,
    ) -> None:
        """num_experts: experts held by this rank; intermediate_size: per expert and tensor-parallel shard;
        expert_parallel: apply() will receive an expert map (global id -> local id, -1 remote)."""

    def weight_params(self) -> dict[str, str]:
        """moe.experts weight argument -> the layer parameter holding it once loading is done."""
        return {"w13": "w13_weight", "w2": "w2_weight"}

    def process_weights_after_loading(self, layer: Module) -> None:
        self._experts = self.bind_weights(layer, "moe.experts", self.spec, self.weight_params())

    def apply(
        self,
        layer: Module,
        x: Tensor,
        topk_weights: Tensor,
        topk_ids: Tensor,
        expert_map: Tensor | None = None,
    ) -> Tensor:
        """x [T, H] -> [T, H]; topk_* from moe.topk (global ids)."""
        return self._experts(
            x,
            topk_weights=topk_weights,
            topk_ids=topk_ids,
            activation=self.spec.activation,
            expert_map=expert_map,
            **self.weights,
        )


_LINEAR: dict[str, type[LinearScheme]] = {}
_MOE: dict[str, type[MoEScheme]] = {}


def register(
    quant_method: str, linear: type[LinearScheme] | None = None, moe: type[MoEScheme] | None = None
) -> None:
    """Make `quant_method` (a quantization_config's "quant_method") resolve to these scheme classes."""
    if linear is not None:
        _LINEAR[quant_method] = linear
    if moe is not None:
        _MOE[quant_method] = moe


def _lookup(table: dict[str, Any], kind: str, config: Mapping[str, Any] | None) -> tuple[Any, dict]:
    config = dict(config or {})
    method = config.get("quant_method") or "none"
    if method not in table:
        raise ValueError(
            f"anyaccel.schemes: no {kind} scheme for quant_method {method!r} "
            f"(known: {', '.join(sorted(table))})"
        )
    return table[method], config


def linear_scheme(config: Mapping[str, Any] | None, platform: Platform | None = None) -> LinearScheme:
    """The scheme for one linear layer of a checkpoint with this quantization_config (None: unquantized)."""
    cls, parsed = _lookup(_LINEAR, "linear", config)
    return cls(parsed, platform)


def moe_scheme(config: Mapping[str, Any] | None, platform: Platform | None = None) -> MoEScheme:
    """The scheme for the experts of one MoE layer (None: unquantized)."""
    cls, parsed = _lookup(_MOE, "MoE", config)
    return cls(parsed, platform)


def flat(x: Tensor) -> Tensor:
    """[..., K] -> [M, K] contiguous rows, the layout every GEMM op takes."""
    return x.reshape(-1, x.shape[-1])
