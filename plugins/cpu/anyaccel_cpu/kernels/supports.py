"""Which specs the CPU kernels serve: the records' predicates, kept apart so that registering imports no
kernel module."""

from __future__ import annotations

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.moe import MoESpec
from anyaccel.platforms.base import Platform

from ..onednn import onednn_missing

MAX_EXPERTS_PER_CHOICE = 8  # E / top_k at most: the dense form does E / top_k times the routed arithmetic


def attention_supports(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.softcap > 0:
        return "torch SDPA has no logit soft-capping"
    if spec.sinks:
        return "torch SDPA has no attention sinks"
    return None


def experts_supports(spec: MoESpec, platform: Platform) -> str | None:
    if spec.quant != "none":
        return f"packs unquantized weights only, not quant={spec.quant}"
    if spec.num_experts > MAX_EXPERTS_PER_CHOICE * spec.top_k:
        return (
            f"computes every expert for every decode token: made for E <= {MAX_EXPERTS_PER_CHOICE} * top_k, "
            f"not E={spec.num_experts}, top_k={spec.top_k}"
        )
    return onednn_missing()


def onednn_supports(spec: object, platform: Platform) -> str | None:
    return onednn_missing()
