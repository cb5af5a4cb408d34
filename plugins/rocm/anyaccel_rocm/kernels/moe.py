"""MoE through AITER: routing (topk_softmax, biased_grouped_topk) and experts (fused_moe on weights
shuffled once at load by `prepare`)."""

from __future__ import annotations

import aiter
import torch
from aiter.fused_moe import fused_moe
from aiter.ops.shuffle import shuffle_weight

from anyaccel.platforms.base import Platform
from anyaccel.schemes.fp8 import to_fnuz

from . import warmup
from .supports import QUANT_TYPES
from .warmup import attach

# --- routing --------------------------------------------------------------------------------------------


def _outputs(logits: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = logits.shape[0]
    return (
        torch.empty(t, top_k, dtype=torch.float32, device=logits.device),
        torch.empty(t, top_k, dtype=torch.int32, device=logits.device),
    )


def topk_softmax(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    """moe.topk, softmax over all experts -> aiter.topk_softmax (the scaling factor applied after it)."""
    weights, ids = _outputs(router_logits, top_k)
    token_expert = torch.empty_like(ids)
    aiter.topk_softmax(weights, ids, token_expert, router_logits, renormalize)
    if routed_scaling_factor != 1.0:
        weights.mul_(routed_scaling_factor)
    return weights, ids


def biased_grouped_topk(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    """moe.topk, sigmoid scores chosen with a correction bias (DeepSeek-V3; n_group 1 is ungrouped) ->
    aiter.biased_grouped_topk."""
    weights, ids = _outputs(router_logits, top_k)
    aiter.biased_grouped_topk(
        router_logits, correction_bias, weights, ids, n_group, topk_group, renormalize, routed_scaling_factor
    )
    return weights, ids


def grouped_topk(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    """moe.topk, grouped without a bias (DeepSeek-V2: a group scores by its best expert) ->
    aiter.grouped_topk. The scaling factor is applied here: AITER's reference (grouped_topk_torch) leaves
    it out, so its kernel's handling is not relied on."""
    weights, ids = _outputs(router_logits, top_k)
    aiter.grouped_topk(
        router_logits, weights, ids, n_group, topk_group, renormalize, scoring == "softmax", 1.0
    )
    if routed_scaling_factor != 1.0:
        weights.mul_(routed_scaling_factor)
    return weights, ids


# --- experts --------------------------------------------------------------------------------------------


def _platform_fp8(
    w: torch.Tensor, scale: torch.Tensor, fp8: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights in AITER's fp8 for the gfx. e4m3fn -> e4m3fnuz reinterprets the bits and doubles the scales
    (anyaccel.schemes.fp8.to_fnuz); e4m3fnuz -> e4m3fn goes through float32 (every fnuz value above fn's
    smallest subnormal is exact)."""
    if w.dtype == fp8:
        return w, scale
    if fp8 == torch.float8_e4m3fnuz and w.dtype == torch.float8_e4m3fn:
        w, scale = to_fnuz(w, scale)
        return w, scale
    return w.float().to(fp8), scale


def prepare(spec, weights: dict) -> dict:
    """Once at load: fp8 weights into the gfx's fp8, per-tensor scales as [E, 1], then
    shuffle_weight(w, (16, 16)) on w13 and w2, the tile order fused_moe reads."""
    w13, w2 = weights["w13"], weights["w2"]
    s13, s2 = weights.get("w13_scale"), weights.get("w2_scale")
    if spec.quant != "none":
        from aiter import dtypes

        fp8 = dtypes.fp8
        w13, s13 = _platform_fp8(w13, s13, fp8)
        w2, s2 = _platform_fp8(w2, s2, fp8)
        if spec.quant == "fp8_tensor":
            s13, s2 = s13.reshape(-1, 1).float(), s2.reshape(-1, 1).float()
    prepared = {
        "w13": shuffle_weight(w13.contiguous(), (16, 16)),
        "w2": shuffle_weight(w2.contiguous(), (16, 16)),
    }
    if "w13_scale" in weights:
        prepared |= {"w13_scale": s13, "w2_scale": s2}
    return weights | prepared


class _ExpertMaps:
    """An expert map converted once (placement is static) into AITER's form: expert_mask marks held
    experts and a held expert's local index is the number held before it. Any placement is served by
    renumbering global ids so that held experts come first, in local-index order."""

    def __init__(self) -> None:
        self.source: torch.Tensor | None = None
        self.renumber = self.mask = torch.empty(0)

    def get(self, expert_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.source is not expert_map:
            held = expert_map >= 0
            count = int(held.sum())
            order = torch.empty_like(expert_map)
            order[held] = expert_map[held]  # held experts: their local index
            remote = (~held).nonzero().flatten()
            order[remote] = torch.arange(remote.numel(), dtype=order.dtype, device=order.device) + count
            self.renumber = order.to(torch.int32)
            self.mask = (torch.arange(expert_map.numel(), device=order.device) < count).to(torch.int32)
            self.source = expert_map
        return self.renumber, self.mask


def experts(spec, platform: Platform):
    """moe.experts -> aiter.fused_moe.fused_moe on prepared (shuffled) weights."""
    act_type = {"silu": aiter.ActivationType.Silu, "gelu": aiter.ActivationType.Gelu}[spec.activation]
    quant_type = getattr(aiter.QuantType, QUANT_TYPES[spec.quant])
    maps = _ExpertMaps()

    def run(
        hidden,
        w13,
        w2,
        topk_weights,
        topk_ids,
        activation="silu",
        expert_map=None,
        w13_scale=None,
        w2_scale=None,
        w13_zeros=None,
        w2_zeros=None,
        w13_bias=None,
        w2_bias=None,
        w13_global_scale=None,
        w2_global_scale=None,
    ):
        mask = None
        if expert_map is not None:
            renumber, mask = maps.get(expert_map)
            topk_ids = renumber[topk_ids.long()]
        return fused_moe(
            hidden,
            w13,
            w2,
            topk_weights,
            topk_ids,
            expert_mask=mask,
            activation=act_type,
            quant_type=quant_type,
            w1_scale=w13_scale,
            w2_scale=w2_scale,
        )

    return attach(run, lambda fn, spec: warmup.experts(fn, spec, prepare))


attach(topk_softmax, warmup.topk)
attach(biased_grouped_topk, warmup.topk)
attach(grouped_topk, warmup.topk)
