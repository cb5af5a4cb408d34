"""Triton moe.topk (contract in anyaccel.ops.moe): fused scoring (softmax or sigmoid), optional grouped
selection with a correction bias (DeepSeek-V2/V3), top-k by repeated arg-max, renormalisation and scaling.
A program routes ROWS tokens; the experts of a row fit one BLOCK_E tile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.moe import TopKSpec
from anyaccel.platforms.base import Platform

from .launch import cdiv, next_pow2
from .tuning import Tuning, split_options


@triton.jit
def _eligible(
    choice,
    e,
    e_ok,
    group_size,
    HAS_BIAS: tl.constexpr,
    N_GROUP: tl.constexpr,
    TOPK_GROUP: tl.constexpr,
    BLOCK_G: tl.constexpr,
):
    """Mask of the experts in each row's TOPK_GROUP best groups. A group scores its best choice, or the sum
    of its best two when a correction bias is used."""
    gi = tl.arange(0, BLOCK_G)
    group_of = e // group_size
    group_score = tl.full([choice.shape[0], BLOCK_G], float("-inf"), dtype=tl.float32)
    for g in tl.static_range(N_GROUP):
        c = tl.where((group_of == g)[None, :] & e_ok[None, :], choice, float("-inf"))
        best = tl.max(c, axis=1)
        if HAS_BIAS:
            first = tl.argmax(c, axis=1)
            best += tl.max(tl.where(e[None, :] == first[:, None], float("-inf"), c), axis=1)
        group_score = tl.where(gi[None, :] == g, best[:, None], group_score)
    kept = tl.zeros([choice.shape[0], BLOCK_G], dtype=tl.int32)
    for _ in tl.static_range(TOPK_GROUP):
        top = tl.argmax(group_score, axis=1)
        kept = tl.where(gi[None, :] == top[:, None], 1, kept)
        group_score = tl.where(gi[None, :] == top[:, None], float("-inf"), group_score)
    eligible = tl.zeros(choice.shape, dtype=tl.int32)
    for g in tl.static_range(N_GROUP):
        kept_g = tl.max(tl.where(gi[None, :] == g, kept, 0), axis=1)
        eligible = tl.where((group_of == g)[None, :], kept_g[:, None], eligible)
    return eligible != 0


@triton.jit
def _topk_kernel(
    logits_ptr,
    bias_ptr,
    weights_ptr,
    ids_ptr,
    rows,
    experts,
    group_size,
    logits_stride,
    scaling,
    SIGMOID: tl.constexpr,
    RENORMALIZE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    N_GROUP: tl.constexpr,
    TOPK_GROUP: tl.constexpr,
    TOP_K: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_G: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    e = tl.arange(0, BLOCK_E)
    row_ok = row < rows
    e_ok = e < experts
    x = tl.load(
        logits_ptr + row[:, None] * logits_stride + e[None, :],
        mask=row_ok[:, None] & e_ok[None, :],
        other=float("-inf"),
    ).to(tl.float32)
    x = tl.where(row_ok[:, None], x, 0.0)  # rows past the end stay finite (their results are not stored)
    if SIGMOID:
        scores = 1.0 / (1.0 + tl.exp(-x))
    else:
        p = tl.exp(x - tl.max(x, axis=1)[:, None])
        scores = p / tl.sum(p, axis=1)[:, None]
    scores = tl.where(e_ok[None, :], scores, 0.0)
    choice = scores
    if HAS_BIAS:
        choice = scores + tl.load(bias_ptr + e, mask=e_ok, other=0.0).to(tl.float32)[None, :]
    choice = tl.where(e_ok[None, :], choice, float("-inf"))
    if N_GROUP > 1:
        choice = tl.where(
            _eligible(choice, e, e_ok, group_size, HAS_BIAS, N_GROUP, TOPK_GROUP, BLOCK_G),
            choice,
            float("-inf"),
        )
    j = tl.arange(0, BLOCK_K)
    weights = tl.zeros([ROWS, BLOCK_K], dtype=tl.float32)
    ids = tl.zeros([ROWS, BLOCK_K], dtype=tl.int32)
    for slot in tl.static_range(TOP_K):
        pick = tl.argmax(choice, axis=1)
        hit = e[None, :] == pick[:, None]
        weights = tl.where(j[None, :] == slot, tl.sum(tl.where(hit, scores, 0.0), axis=1)[:, None], weights)
        ids = tl.where(j[None, :] == slot, pick[:, None].to(tl.int32), ids)
        choice = tl.where(hit, float("-inf"), choice)
    if RENORMALIZE:
        weights = weights / tl.sum(weights, axis=1)[:, None]
    mask = row_ok[:, None] & (j < TOP_K)[None, :]
    tl.store(weights_ptr + row[:, None] * TOP_K + j[None, :], weights * scaling, mask=mask)
    tl.store(ids_ptr + row[:, None] * TOP_K + j[None, :], ids, mask=mask)


def topk(spec: TopKSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.topk", platform)
    block_e = next_pow2(spec.num_experts)

    def triton_topk(
        router_logits: torch.Tensor,
        top_k: int,
        scoring: str = "softmax",
        renormalize: bool = True,
        n_group: int = 1,
        topk_group: int = 1,
        correction_bias: torch.Tensor | None = None,
        routed_scaling_factor: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows, experts = router_logits.shape
        weights = torch.empty((rows, top_k), dtype=torch.float32, device=router_logits.device)
        ids = torch.empty((rows, top_k), dtype=torch.int32, device=router_logits.device)
        if rows == 0:
            return weights, ids
        consts, options = split_options(tuning.pick(rows))
        _topk_kernel[(cdiv(rows, consts["ROWS"]),)](
            router_logits,
            router_logits if correction_bias is None else correction_bias,
            weights,
            ids,
            rows,
            experts,
            experts // n_group,
            router_logits.stride(0),
            routed_scaling_factor,
            SIGMOID=scoring == "sigmoid",
            RENORMALIZE=renormalize,
            HAS_BIAS=correction_bias is not None,
            N_GROUP=n_group,
            TOPK_GROUP=topk_group,
            TOP_K=top_k,
            ROWS=consts["ROWS"],
            BLOCK_E=block_e,
            BLOCK_G=next_pow2(n_group),
            BLOCK_K=next_pow2(top_k),
            **options,
        )
        return weights, ids

    return triton_topk
