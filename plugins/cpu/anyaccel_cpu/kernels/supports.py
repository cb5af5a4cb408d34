"""Which specs the CPU kernels serve: the records' predicates, kept apart so that registering imports no
kernel module (and builds nothing: the C kernels are compiled when a predicate first asks for them)."""

from __future__ import annotations

import torch

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.moe import MX_QUANT, MoESpec, TopKSpec, unserved_features
from anyaccel.ops.quant import W4A16Spec, W8A16Spec
from anyaccel.platforms.base import Platform

from ..onednn import onednn_missing


def native_missing() -> str | None:
    """Imported when first asked: registering the kernels loads no build machinery."""
    from ..native import native_missing

    return native_missing()


def attention_supports(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.softcap > 0:
        return "torch SDPA has no logit soft-capping"
    if spec.sinks:
        return "torch SDPA has no attention sinks"
    return None


def native_attention_supports(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.cache_dtype != torch.float32:
        return f"reads float32 caches only, not {spec.cache_dtype}"
    return native_missing()


def native_experts_supports(spec: MoESpec, platform: Platform) -> str | None:
    if spec.quant != "none":
        return f"computes with float32 weights only, not quant={spec.quant}"
    return unserved_features(spec) or native_missing()


def native_mx_experts_supports(spec: MoESpec, platform: Platform) -> str | None:
    if spec.quant not in MX_QUANT:
        return f"reads block-scaled experts (mxfp8, mxfp4, nvfp4) only, not quant={spec.quant}"
    return native_missing()


def native_topk_supports(spec: TopKSpec, platform: Platform) -> str | None:
    if spec.grouped:
        return "selects without expert groups only (n_group == 1)"
    return native_missing()


def native_w4_supports(spec: W4A16Spec, platform: Platform) -> str | None:
    if spec.format != "affine":
        return f"reads the affine format only, not {spec.format}"
    return native_missing()


def native_supports(spec: object, platform: Platform) -> str | None:
    return native_missing()


def native_q8_supports(spec: W4A16Spec | W8A16Spec, platform: Platform) -> str | None:
    """The int8-activation GEMMs: the affine w4 format or int8 groups, on x86-64 with AVX2."""
    if isinstance(spec, W4A16Spec) and spec.format != "affine":
        return f"reads the affine format only, not {spec.format}"
    from ..native import native

    missing = native_missing()
    if missing or native().anyaccel_q8_available():
        return missing
    return "the int8 dot products are built for x86-64 with AVX2 only (this CPU or build has no AVX2)"


def onednn_supports(spec: object, platform: Platform) -> str | None:
    return onednn_missing()
