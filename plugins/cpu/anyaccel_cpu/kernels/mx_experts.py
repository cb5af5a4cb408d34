"""moe.experts with block-scaled weights (mxfp8, mxfp4, nvfp4: GPT-OSS's MXFP4 experts) on the CPU, through
the C block matmul of kernels/mx.py: the (token, expert) pairs are grouped by expert with one sort, and each
chosen expert's w13 and w2 are read as stored (4 or 8 bits) once per call for all its rows, never
dequantized to float32 for a decode batch. Expert biases and every contract activation (silu, gelu,
swiglu_oai) are applied in float32. `prepare` decodes the block scales once, at load time, to float32 with
nvfp4's per-expert global folded in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from anyaccel.ops.base import expect, expect_tensor
from anyaccel.ops.microscaling import FORMATS, MXFormat
from anyaccel.ops.moe import MoESpec
from anyaccel.platforms.base import Platform
from anyaccel.providers.reference.moe import glu_for

from .. import hugepages
from .mx import block_matmul, float_scales

OP = "moe.experts"


def _expert_scales(fmt: MXFormat, scale: torch.Tensor, glob: torch.Tensor | None) -> torch.Tensor:
    """[E, N, K/block] float32 multipliers, the per-expert global folded in."""
    if scale.dtype == torch.float32:
        return scale
    return torch.stack(
        [
            float_scales(fmt, scale[e], None if glob is None else glob[e : e + 1])
            for e in range(scale.shape[0])
        ]
    )


def prepare(spec: MoESpec, weights: dict[str, Any]) -> dict[str, Any]:
    fmt = FORMATS[spec.quant]
    out = dict(weights)
    for name in ("w13", "w2"):
        out[name] = weights[name].contiguous().view(torch.uint8)
        out[f"{name}_scale"] = _expert_scales(
            fmt, weights[f"{name}_scale"], weights.get(f"{name}_global_scale")
        )
    return hugepages.prepare(spec, out)  # streamed at every call: in huge pages


def experts(spec: MoESpec, platform: Platform) -> Callable[..., torch.Tensor]:
    fmt = FORMATS[spec.quant]
    e, h, i = spec.num_experts, spec.hidden_size, spec.intermediate_size

    def cpu_mx_experts(
        hidden: torch.Tensor,
        w13: torch.Tensor,
        w2: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.Tensor,
        activation: str = "silu",
        expert_map: torch.Tensor | None = None,
        w13_scale: torch.Tensor | None = None,
        w2_scale: torch.Tensor | None = None,
        w13_zeros: torch.Tensor | None = None,
        w2_zeros: torch.Tensor | None = None,
        w13_bias: torch.Tensor | None = None,
        w2_bias: torch.Tensor | None = None,
        w13_global_scale: torch.Tensor | None = None,
        w2_global_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        expect(OP, w13_scale is not None and w2_scale is not None, f"{spec.quant} experts need their scales")
        s13 = _expert_scales(fmt, w13_scale, w13_global_scale).contiguous()
        s2 = _expert_scales(fmt, w2_scale, w2_global_scale).contiguous()
        w13b, w2b = w13.contiguous().view(torch.uint8), w2.contiguous().view(torch.uint8)
        # the C kernel trusts these shapes: checked on every call, not only under ANYACCEL_VALIDATE
        expect_tensor(OP, "w13", w13b, shape=(e, 2 * i, fmt.element_cols(h)))
        expect_tensor(OP, "w2", w2b, shape=(e, h, fmt.element_cols(i)))
        expect_tensor(OP, "w13_scale", s13, shape=(e, 2 * i, fmt.scale_cols(h)))
        expect_tensor(OP, "w2_scale", s2, shape=(e, h, fmt.scale_cols(i)))
        expect_tensor(OP, "hidden", hidden, shape=(None, h))
        t, k = topk_ids.shape
        local = topk_ids.long().flatten()
        if expert_map is not None:
            local = expert_map.long()[local]
        expect(OP, bool(((local >= -1) & (local < e)).all()), f"expert ids must map into [0, {e}) or -1")
        order = local.argsort(stable=True)
        counts = torch.bincount(local + 1, minlength=e + 1).tolist()  # slot 0: remote pairs
        x = hidden.float()
        weights = topk_weights.float().flatten()
        glu = glu_for(activation)
        out = torch.zeros(t, h, dtype=torch.float32)
        start = counts[0]
        for expert, count in enumerate(counts[1:]):
            if count == 0:
                continue
            pairs = order[start : start + count]
            start += count
            rows = x[pairs // k].contiguous()
            b13 = None if w13_bias is None else w13_bias[expert].float().contiguous()
            gate_up = block_matmul(rows, w13b[expert], s13[expert], fmt, b13)
            act = glu(*gate_up.chunk(2, dim=-1)).contiguous()
            b2 = None if w2_bias is None else w2_bias[expert].float().contiguous()
            y = block_matmul(act, w2b[expert], s2[expert], fmt, b2)
            out.index_add_(0, pairs // k, y * weights[pairs, None])
        return out.to(hidden.dtype)

    return cpu_mx_experts
