"""Emulator of anyaccel_xpu.vendor_ops: the torch.ops namespaces vllm-xpu-kernels registers, with the
schemas of csrc/torch_bindings.cpp, csrc/moe/torch_bindings.cpp and csrc/xpu/torch_bindings.cpp, the
documented results in float32 and the checks the kernels make.

    C.rms_norm(out, x, w, eps)                        out = x * rsqrt(mean(x^2) + eps) * w
    C.fused_add_rms_norm(x, residual, w, eps)         residual += x; x = rms_norm(residual) (in place)
    C.rotary_embedding(pos, q, k, head_size, cos_sin_cache, is_neox)   in place; cache in q's dtype
    C.silu_and_mul / gelu_and_mul / gelu_tanh_and_mul(out, x)
    cache_ops.reshape_and_cache_flash(k, v, kc, vc, slots, kv_cache_dtype, k_scale, v_scale)
    moe_C.topk_softmax / topk_sigmoid (weights, ids, token_expert, logits, renormalize, bias, [scaling,]
                                       is_padding); moe_C.grouped_topk(scores, ...) -> (weights, ids)
    xpu_C.fp8_gemm(A, B, out_dtype, A_scale, B_scale, bias); xpu_C.int4_gemm_w4a16(A, B, bias, scale, zp,
                                       group_size, g_idx)
Every op needs device code for the emulated arch (pvc, bmg).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from . import arch
from .arch import check

FP8 = {"fp8": torch.float8_e4m3fn, "fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _op(name: str):
    arch.require_device_code(name)


# --- _C -----------------------------------------------------------------------------------------------------


def _rms(x: torch.Tensor, w: torch.Tensor | None, eps: float) -> torch.Tensor:
    xf = x.float()
    y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return y if w is None else y * w


def rms_norm(result, input, weight, epsilon) -> None:
    _op("rms_norm")
    check(input.stride(-1) == 1, "input must have a contiguous last dimension")
    check(result.shape == input.shape and result.dtype == input.dtype, "result must match input")
    check(weight is None or weight.shape == (input.shape[-1],), "weight must be [hidden_size]")
    result.copy_(_rms(input, weight, epsilon))


def fused_add_rms_norm(input, residual, weight, epsilon) -> None:
    _op("fused_add_rms_norm")
    check(input.is_contiguous() and residual.is_contiguous(), "input and residual must be contiguous")
    check(input.shape == residual.shape and input.dtype == residual.dtype, "input and residual must match")
    residual.copy_((input.float() + residual.float()).to(residual.dtype))
    input.copy_(_rms(residual, weight, epsilon))


def rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox) -> None:
    """query [T, Hq * D] or [T, Hq, D], key likewise (or None), rotated in place. The kernel reads the cache
    as the query's scalar type (vLLM converts it first), so another dtype is refused here."""
    _op("rotary_embedding")
    check(positions.dtype == torch.int64, "positions must be int64")
    check(cos_sin_cache.dtype == query.dtype, "cos_sin_cache must have the query's dtype")
    rot = cos_sin_cache.shape[1]
    check(rot <= head_size and rot % 2 == 0, "rotary dim must be even and at most head_size")
    cos, sin = cos_sin_cache[positions.long()].float().chunk(2, dim=-1)  # [T, rot/2]
    for x in (query, key):
        if x is None:
            continue
        heads = x.view(x.shape[0], -1, head_size)
        r = heads[..., :rot].float()
        if is_neox:
            x1, x2 = r[..., : rot // 2], r[..., rot // 2 :]
        else:
            x1, x2 = r[..., 0::2], r[..., 1::2]
        c, s = cos.unsqueeze(1), sin.unsqueeze(1)
        y1, y2 = x1 * c - x2 * s, x2 * c + x1 * s
        rotated = torch.cat([y1, y2], -1) if is_neox else torch.stack([y1, y2], -1).flatten(-2)
        heads[..., :rot] = rotated.to(x.dtype)


def _gated(name, result, input, act) -> None:
    _op(name)
    d = input.shape[-1] // 2
    check(input.stride(-1) == 1 and input.shape[-1] % 2 == 0, "input's last dim must be contiguous and even")
    check(result.shape == (*input.shape[:-1], d), "result must be [..., d]")
    x = input.float()
    result.copy_((act(x[..., :d]) * x[..., d:]).to(result.dtype))


def silu_and_mul(result, input) -> None:
    _gated("silu_and_mul", result, input, F.silu)


def gelu_and_mul(result, input) -> None:
    _gated("gelu_and_mul", result, input, F.gelu)


def gelu_tanh_and_mul(result, input) -> None:
    _gated("gelu_tanh_and_mul", result, input, lambda x: F.gelu(x, approximate="tanh"))


C = SimpleNamespace(
    rms_norm=rms_norm,
    fused_add_rms_norm=fused_add_rms_norm,
    rotary_embedding=rotary_embedding,
    silu_and_mul=silu_and_mul,
    gelu_and_mul=gelu_and_mul,
    gelu_tanh_and_mul=gelu_tanh_and_mul,
)


# --- _C_cache_ops -------------------------------------------------------------------------------------------


def reshape_and_cache_flash(
    key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale
):
    """key/value [T, Hkv, D] into caches [P, block_size, Hkv, D]; slots < 0 are skipped. fp8 caches store
    value / scale, saturated to the format's finite range."""
    _op("reshape_and_cache_flash")
    check(slot_mapping.dtype == torch.int64, "slot_mapping must be int64")
    check(key_cache.dim() == 4 and key_cache.shape[2:] == key.shape[1:], "key_cache must be [P, bs, Hkv, D]")
    if kv_cache_dtype == "auto":
        check(key_cache.dtype == key.dtype, "an 'auto' cache has the key's dtype")
    else:
        check(kv_cache_dtype in FP8, f"Unsupported data type of kv cache: {kv_cache_dtype}")
        check(
            key_cache.dtype == FP8[kv_cache_dtype], f"cache dtype {key_cache.dtype} is not {kv_cache_dtype}"
        )
    check(k_scale.dtype == torch.float32 and v_scale.dtype == torch.float32, "scales must be float32")
    keep = slot_mapping >= 0
    slots = slot_mapping[keep]
    for src, cache, scale in ((key, key_cache, k_scale), (value, value_cache, v_scale)):
        rows = src[keep].float()
        if kv_cache_dtype != "auto":
            top = torch.finfo(cache.dtype).max
            rows = (rows / scale.float().reshape(())).clamp(-top, top)
        cache.view(-1, *cache.shape[2:])[slots] = rows.to(cache.dtype)


cache_ops = SimpleNamespace(reshape_and_cache_flash=reshape_and_cache_flash)


# --- _moe_C -------------------------------------------------------------------------------------------------


def _route(name, weights, ids, token_expert, scores, k, renormalize, bias, scaling, is_padding) -> None:
    _op(name)
    check(weights.dtype == torch.float32, "topk_weights must be float32")
    check(ids.dtype in (torch.int32, torch.int64), "topk_indices must be int32 or int64")
    check(is_padding is None, "is_padding is not emulated")
    choice = scores if bias is None else scores + bias.float().unsqueeze(0)
    picked = torch.topk(choice, k, dim=-1).indices
    w = scores.gather(1, picked)
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    weights.copy_(w * scaling)
    ids.copy_(picked.to(ids.dtype))
    token_expert.copy_(torch.arange(picked.numel(), dtype=token_expert.dtype).view_as(picked))


def topk_softmax(
    topk_weights, topk_indices, token_expert_indices, gating_output, renormalize, bias, is_padding
):
    scores = torch.softmax(gating_output.float(), dim=-1)
    _route(
        "topk_softmax", topk_weights, topk_indices, token_expert_indices, scores, topk_weights.shape[1],
        renormalize, bias, 1.0, is_padding,
    )  # fmt: skip


def topk_sigmoid(
    topk_weights, topk_indices, token_expert_indices, gating_output, renormalize, bias, routed_scaling_factor,
    is_padding,
):  # fmt: skip
    scores = torch.sigmoid(gating_output.float())
    _route(
        "topk_sigmoid", topk_weights, topk_indices, token_expert_indices, scores, topk_weights.shape[1],
        renormalize, bias, routed_scaling_factor, is_padding,
    )  # fmt: skip


def grouped_topk(scores, n_group, topk_group, topk, renormalize, routed_scaling_factor, bias, scoring_func):
    """tests/ops/grouped_topk_op.py: scoring_func 0 takes activated scores, 1 applies sigmoid; a group
    scores by the sum of its two best biased scores; weights are the unbiased scores of the chosen experts."""
    _op("grouped_topk")
    check(scoring_func in (0, 1), f"unknown scoring_func {scoring_func}")
    t, e = scores.shape
    check(e % n_group == 0, "num_experts must be divisible by n_group")
    check(bias is not None and bias.shape == (e,), "bias must be [num_experts]")
    s = scores.float() if scoring_func == 0 else torch.sigmoid(scores.float())
    biased = s + bias.float().unsqueeze(0)
    group_scores = biased.view(t, n_group, -1).topk(2, dim=-1).values.sum(-1)
    groups = group_scores.topk(topk_group, dim=-1).indices
    mask = torch.zeros(t, n_group, dtype=torch.bool).scatter_(1, groups, True)
    mask = mask.unsqueeze(-1).expand(t, n_group, e // n_group).reshape(t, e)
    picked = biased.masked_fill(~mask, float("-inf")).topk(topk, dim=-1).indices
    w = s.gather(1, picked)
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    return (w * routed_scaling_factor).float(), picked.to(torch.int32)


moe_C = SimpleNamespace(topk_softmax=topk_softmax, topk_sigmoid=topk_sigmoid, grouped_topk=grouped_topk)


# --- _xpu_C -------------------------------------------------------------------------------------------------


def fp8_gemm(A, B, out_dtype, A_scale_, B_scale_, bias_):
    """fp8_gemm_w8a8.h: the scale shapes choose per-tensor / per-token / grouped activations and
    per-tensor / per-channel / blocked weights; grouped activations need blocked weights over the same K
    groups."""
    _op("fp8_gemm")
    check(A.dim() == 2 and B.dim() == 2 and A.shape[1] == B.shape[0], "fp8_gemm: A [M, K] and B [K, N]")
    check(A.dtype in (torch.float8_e4m3fn, torch.float8_e5m2), "fp8_gemm: A must be fp8")
    check(B.dtype in (torch.float8_e4m3fn, torch.float8_e5m2), "fp8_gemm: B must be fp8")
    check(B.stride(-1) == 1 or B.stride(-2) == 1, "fp8_gemm: B must be row- or column-major")
    out_dtype = out_dtype or torch.bfloat16
    check(out_dtype in FLOATS, f"fp8_gemm: unsupported out_dtype {out_dtype}")
    m, k = A.shape
    n = B.shape[1]
    a_s = torch.ones(1) if A_scale_ is None else A_scale_.float()
    b_s = torch.ones(1) if B_scale_ is None else B_scale_.float()
    a = A.float()
    b = B.float()
    block = a_s.dim() == 2 and a_s.shape[1] > 1
    if block:
        check(a_s.shape[0] == m, "A_scale rows must match M")
        check(
            b_s.dim() == 2 and a_s.shape[1] == b_s.shape[0],
            f"Mismatch group size in input and weight.{a_s.shape[1]} vs {b_s.shape[0]}",
        )
        gk, gn = k // b_s.shape[0], n // b_s.shape[1]
        check(gk * b_s.shape[0] == k and gn * b_s.shape[1] == n, "scale groups must divide K and N")
        a = a * a_s.repeat_interleave(gk, dim=1)
        b = b * b_s.repeat_interleave(gk, dim=0).repeat_interleave(gn, dim=1)
    else:
        check(a_s.numel() in (1, m), "A_scale must be [1] (per tensor) or [M, 1] (per token)")
        check(b_s.numel() == 1 or b_s.shape == (n,), "B_scale must be [1] (per tensor) or [N] (per channel)")
        a = a * a_s.reshape(-1, 1)
        b = b * b_s.reshape(1, -1)
    out = a @ b
    if bias_ is not None and bias_.numel():
        check(bias_.numel() in (1, n), "bias must be a scalar or [N]")
        out = out + bias_.float()
    return out.to(out_dtype)


def _unpack_k(words: torch.Tensor) -> torch.Tensor:
    """[K/8, N] int32, eight K nibbles per word (bits 4i..4i+3 = row 8r+i) -> [K, N] values 0..15."""
    shifts = torch.arange(0, 32, 4, dtype=torch.int32).view(1, 8, 1)
    nibbles = (words.unsqueeze(1) >> shifts) & 0xF
    return nibbles.reshape(-1, words.shape[1])


def int4_gemm_w4a16(A_, B, bias, B_scale, B_zp, group_size, g_idx):
    """x [M, K] fp16/bf16 @ dequant(B) with B the GPTQ [K/8, N] int32 read column-major (stride(-2) == 1),
    scales [K/G, N] in x's dtype, a symmetric zero point ([1] int8) or per-group zero points [K/G, N]."""
    _op("int4_gemm_w4a16")
    check(A_.dtype in (torch.float16, torch.bfloat16), "int4_gemm_w4a16: activations must be fp16 or bf16")
    check(B.dtype == torch.int32 and B.dim() == 2, "int4_gemm_w4a16: B must be int32 [K/8, N]")
    check(B.stride(-2) == 1, "int4_gemm_w4a16: B must be column-major ([N, K/8] storage viewed as [K/8, N])")
    k = A_.shape[-1]
    check(B.shape[0] * 8 == k, f"int4_gemm_w4a16: B has {B.shape[0]} rows for K = {k}")
    check(B_scale.dtype == A_.dtype, "int4_gemm_w4a16: scales must have the activations' dtype")
    check(group_size > 0 and k % group_size == 0, "int4_gemm_w4a16: group_size must divide K")
    q = _unpack_k(B.contiguous()).float()
    groups = torch.arange(k) // group_size if g_idx is None else g_idx.long()
    check(groups.numel() == k, "g_idx must be [K]")
    zero = B_zp.float()
    check(zero.numel() == 1 or zero.shape == B_scale.shape, "zero points: one value or [K/G, N]")
    zero = zero.reshape(1, 1) if zero.numel() == 1 else zero[groups]
    w = (q - zero) * B_scale.float()[groups]
    out = A_.reshape(-1, k).float() @ w
    if bias is not None:
        out = out + bias.float()
    return out.to(A_.dtype)


xpu_C = SimpleNamespace(fp8_gemm=fp8_gemm, int4_gemm_w4a16=int4_gemm_w4a16)
