"""4-bit weights with 16-bit activations: GPTQ (quant_method "gptq", v1 checkpoints) and AWQ (quant_method
"awq", GEMM version), through quant.w4a16_gemm for linears and moe.experts (int4_group) for experts.

quantization_config:
    gptq {"bits": 4, "group_size": 32|64|128, "desc_act": bool, "sym": bool, "checkpoint_format": "gptq"}
    awq  {"bits": 4, "group_size": 32|64|128, "zero_point": bool, "version": "gemm"}
Packing formats: anyaccel.schemes.packing and docs/quantization.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module

from anyaccel.ops.moe import MoESpec
from anyaccel.ops.quant import W4A16Spec
from anyaccel.platforms.base import Platform

from .base import (
    LinearScheme,
    MoEScheme,
    ParamLayout,
    Scheme,
    add_param,
    flat,
    register,
    replace_param,
    tensor,
)
from .packing import PACK, awq_unpack, gptq_unpack, pack_rows


class _W4Config(Scheme):
    format = "gptq"

    def __init__(self, config: Mapping[str, Any], platform: Platform | None = None) -> None:
        super().__init__(config, platform)
        who = f"{self.format} scheme"
        if config.get("bits", 4) != 4:
            raise ValueError(f"{who}: only 4-bit checkpoints are supported, got bits={config.get('bits')}")
        self.group = int(config.get("group_size", 128))
        if self.group not in (32, 64, 128):
            raise ValueError(f"{who}: group_size must be 32, 64 or 128, got {self.group}")
        if self.format == "gptq":
            fmt = config.get("checkpoint_format", config.get("format", "gptq"))
            if fmt != "gptq":
                raise ValueError(f"{who}: checkpoint_format {fmt!r} is not supported (v1 'gptq' only)")
            self.zeros = True  # GPTQ checkpoints always carry qzeros (symmetric ones store 8 - 1)
            self.desc_act = bool(config.get("desc_act", False))
        else:
            if str(config.get("version", "gemm")).lower() != "gemm":
                raise ValueError(f"{who}: version {config.get('version')!r} is not supported ('gemm' only)")
            self.zeros = bool(config.get("zero_point", True))
            self.desc_act = False

    def check_dtype(self, params_dtype: torch.dtype) -> None:
        if params_dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(
                f"{self.format} scheme: activations must be float16 or bfloat16, got {params_dtype}"
            )

    def add_packed(
        self,
        layer: Module,
        prefix: str,
        n: int,
        k: int,
        params_dtype: torch.dtype,
        experts: tuple[int, ...] = (),
        all_groups: int | None = None,
        parts: int = 1,
    ) -> None:
        """Register qweight/qzeros/scales(/g_idx) of an [N, K] weight in the checkpoint's own layout.
        all_groups: keep this many groups of scales and zeros whole instead of the K / G of this shard (an
        act-order layer split along K: its g_idx sends the shard's features to any group).
        parts: checkpoint tensors merged along N (q/k/v): g_idx keeps one row per part, checked to agree."""
        g, shift = self.group, len(experts)

        def layout(out_dim: int | None, in_dim: int | None, out_div: int = 1, in_div: int = 1) -> ParamLayout:
            return ParamLayout(
                None if out_dim is None else out_dim + shift,
                None if in_dim is None else in_dim + shift,
                out_div,
                in_div,
            )

        if self.format == "gptq":
            add_param(
                layer,
                prefix + "qweight",
                torch.empty(*experts, k // PACK, n, dtype=torch.int32),
                layout(1, 0, 1, PACK),
            )
            if parts > 1:
                g_idx = torch.empty(parts, k, dtype=torch.int32)
                add_param(layer, prefix + "g_idx", g_idx, ParamLayout(None, 1, per_shard=True))
            else:
                g_idx = torch.empty(*experts, k, dtype=torch.int32)
                add_param(layer, prefix + "g_idx", g_idx, layout(None, 0))
        else:
            add_param(
                layer,
                prefix + "qweight",
                torch.empty(*experts, k, n // PACK, dtype=torch.int32),
                layout(1, 0, PACK, 1),
            )
        groups, group_dim = (k // g, 0) if all_groups is None else (all_groups, None)
        if self.zeros:
            add_param(
                layer,
                prefix + "qzeros",
                torch.empty(*experts, groups, n // PACK, dtype=torch.int32),
                layout(1, group_dim, PACK, g),
            )
        add_param(
            layer,
            prefix + "scales",
            torch.empty(*experts, groups, n, dtype=params_dtype),
            layout(1, group_dim, 1, g),
        )


def _is_act_order(g_idx: Tensor, group: int) -> bool:
    """Whether g_idx differs from the plain k // group map (GPTQ writes that map even without desc_act). A
    tensor-parallel shard of a plain map starts at a later group: it is compared from its first entry."""
    plain = g_idx[..., :1] + torch.arange(g_idx.shape[-1], device=g_idx.device) // group
    return not bool((g_idx == plain).all())


class W4A16Linear(_W4Config, LinearScheme):
    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        self.check_dtype(params_dtype)
        self.n, self.k, self.dtype = sum(output_sizes), input_size, params_dtype
        # act-order groups are scattered over the input features: a row-parallel shard keeps all of them,
        # and its g_idx (global group ids) picks the rows it needs
        self.all_groups = (
            full_input_size // self.group
            if self.desc_act and full_input_size is not None and full_input_size != input_size
            else None
        )
        parts = len(output_sizes)
        self.add_packed(layer, "", self.n, self.k, params_dtype, all_groups=self.all_groups, parts=parts)

    def process_weights_after_loading(self, layer: Module) -> None:
        if self.format == "gptq" and tensor(layer, "g_idx").dim() == 2:  # one row per merged part
            g_idx = tensor(layer, "g_idx")
            if not bool((g_idx == g_idx[:1]).all()):
                raise ValueError(
                    f"gptq scheme: the {len(g_idx)} merged parts of this layer (q/k/v or gate/up) have "
                    "different g_idx; they read one input, so their act-order permutation must be one"
                )
            replace_param(layer, "g_idx", g_idx[0].contiguous())
        self.act_order = self.format == "gptq" and (
            self.all_groups is not None or _is_act_order(tensor(layer, "g_idx"), self.group)
        )
        if self.format == "gptq" and not self.act_order:
            delattr(layer, "g_idx")  # the plain map is implied
        spec = W4A16Spec(self.dtype, self.format, self.group, self.zeros, self.act_order, self.n, self.k)
        params = {"qweight": "qweight", "scales": "scales"}
        params |= {"qzeros": "qzeros"} if self.zeros else {}
        params |= {"g_idx": "g_idx"} if self.act_order else {}
        self._gemm = self.bind_weights(layer, "quant.w4a16_gemm", spec, params)

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        w = self.weights
        out = self._gemm(flat(x), w["qweight"], w["scales"], w.get("qzeros"), w.get("g_idx"), bias)
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], self.n)


class GptqLinear(W4A16Linear):
    format = "gptq"


class AwqLinear(W4A16Linear):
    format = "awq"


class W4A16MoE(_W4Config, MoEScheme):
    """Per-expert checkpoint tensors stacked on dim 0 (w13_qweight, w13_scales, ..., w2_*), repacked after
    loading into moe.experts' int4_group layout: w13_weight [E, 2I, H/8], w13_scale [E, 2I, H/G],
    w13_zeros uint8 [E, 2I, H/G] (likewise w2). Act-order checkpoints are rejected: int4_group has no
    g_idx."""

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
        self.check_dtype(params_dtype)
        e, h, i = num_experts, hidden_size, intermediate_size
        self.add_packed(layer, "w13_", 2 * i, h, params_dtype, (e,))
        self.add_packed(layer, "w2_", h, i, params_dtype, (e,))
        self.spec = MoESpec(
            params_dtype, e, top_k, h, i, activation, "int4_group", self.group, expert_parallel
        )

    def process_weights_after_loading(self, layer: Module) -> None:
        for prefix in ("w13_", "w2_"):
            qweight = tensor(layer, prefix + "qweight")
            qzeros = tensor(layer, prefix + "qzeros") if self.zeros else None
            if self.format == "gptq":
                if _is_act_order(tensor(layer, prefix + "g_idx"), self.group):
                    raise ValueError(
                        "gptq MoE scheme: act-order (desc_act) experts are not supported by "
                        "moe.experts' int4_group layout"
                    )
                delattr(layer, prefix + "g_idx")
            q, zeros = (gptq_unpack if self.format == "gptq" else awq_unpack)(qweight, qzeros)
            self._replace(layer, prefix, pack_rows(q), zeros)
        super().process_weights_after_loading(layer)

    def _replace(self, layer: Module, prefix: str, weight: Tensor, zeros: Tensor | None) -> None:
        """Swap the checkpoint tensors for moe.experts' [E, N, K/...] ones (with layouts of the new dims)."""
        scales = tensor(layer, prefix + "scales").transpose(1, 2).contiguous()
        for name in ("qweight", "qzeros", "scales"):
            if hasattr(layer, prefix + name):
                delattr(layer, prefix + name)
        add_param(layer, prefix + "weight", weight, ParamLayout(1, 2, 1, PACK))
        add_param(layer, prefix + "scales", scales, ParamLayout(1, 2, 1, self.group))
        if zeros is not None:
            add_param(
                layer,
                prefix + "zeros",
                zeros.transpose(1, 2).to(torch.uint8).contiguous(),
                ParamLayout(1, 2, 1, self.group),
            )

    def weight_params(self) -> dict[str, str]:
        params = super().weight_params() | {"w13_scale": "w13_scales", "w2_scale": "w2_scales"}
        if self.zeros:
            params |= {"w13_zeros": "w13_zeros", "w2_zeros": "w2_zeros"}
        return params


class GptqMoE(W4A16MoE):
    format = "gptq"


class AwqMoE(W4A16MoE):
    format = "awq"


register("gptq", GptqLinear, GptqMoE)
register("awq", AwqLinear, AwqMoE)
