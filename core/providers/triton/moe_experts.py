"""Triton moe.experts (contract in anyaccel.ops.moe): the fused MoE.

1. moe_align.align sorts the (token, choice) slots by local expert in BLOCK_M-aligned runs.
2. Grouped GEMM 1, grid (sorted blocks, I tiles): gathers the tokens' hidden rows, multiplies by the gate
   and up rows of the block's expert, applies act(gate) * up and stores the slot's intermediate row.
3. Grouped GEMM 2, grid (sorted blocks, H tiles): intermediate @ w2[e].T times the slot's routing weight.
4. The k slot outputs of each token are summed in fp32 (remote experts' slots stay zero).
Weights may be plain, fp8 with a per-expert or 128x128 block scale, int4 groups (8 nibbles per int32
along the input dim, scales and optional uint8 zeros per group), or block-scaled mxfp8 / mxfp4 / nvfp4
(mxlib.load_operand; nvfp4's per-expert global multiplies the accumulator): dequantization happens on the
weight tile. Expert biases are added to the gate/up and down accumulators; "swiglu_oai" is GPT-OSS's
clamped SwiGLU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.moe import SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT, MoESpec
from anyaccel.platforms.base import Platform

from .jitlib import ACTIVATION_CODES, activate, mma
from .launch import cdiv, fp32_dot
from .moe_align import align
from .mxlib import load_operand
from .tuning import Tuning, split_options

PLAIN, FP8_TENSOR, FP8_BLOCK, INT4, MXFP8, MXFP4, NVFP4 = range(7)  # values of the QUANT constexpr
QUANT_CODES = {
    "none": PLAIN,
    "fp8_tensor": FP8_TENSOR,
    "fp8_block": FP8_BLOCK,
    "int4_group": INT4,
    "mxfp8": MXFP8,
    "mxfp4": MXFP4,
    "nvfp4": NVFP4,
}
PACKING = {INT4: 8, MXFP4: 2, NVFP4: 2}  # values per stored element along K
SWIGLU_OAI = 3  # the ACT constexpr of the clamped SwiGLU (jitlib's codes are 0..2)


@triton.jit
def _accumulate(
    acc,
    a,
    w_ptr,
    scale_ptr,
    zeros_ptr,
    expert,
    rows,
    rows_ok,
    k0,
    k,
    k_ok,
    N,
    K,
    group_size,
    QUANT: tl.constexpr,
    HAS_ZEROS: tl.constexpr,
    FP32_DOT: tl.constexpr,
):
    """acc + a @ W[rows, k].T for the expert's weight W [N, K] (a: [BLOCK_M, BLOCK_K] activations)."""
    mask = k_ok[:, None] & rows_ok[None, :]
    if QUANT >= 4:  # block-scaled: the expert's [N, K] operand, formats 0..2 of mxlib
        elems = K if QUANT == 4 else K // 2
        blocks = K // (16 if QUANT == 6 else 32)
        w = load_operand(
            w_ptr + expert * N * elems,
            scale_ptr + expert * N * blocks,
            rows[None, :],
            k[:, None],
            mask,
            K,
            QUANT - 4,
        )
        acc = mma(acc, a, w.to(a.dtype), FP32_DOT)
    elif QUANT == 3:
        word = tl.load(w_ptr + (expert * N + rows[None, :]) * (K // 8) + k[:, None] // 8, mask=mask, other=0)
        q = (word >> ((k[:, None] % 8) * 4)) & 0xF
        at = (expert * N + rows[None, :]) * (K // group_size) + k[:, None] // group_size
        s = tl.load(scale_ptr + at, mask=mask, other=0.0).to(tl.float32)
        if HAS_ZEROS:
            z = tl.load(zeros_ptr + at, mask=mask, other=0).to(tl.int32)
        else:
            z = 8
        acc = mma(acc, a, ((q - z).to(tl.float32) * s).to(a.dtype), FP32_DOT)
    else:
        w = tl.load(w_ptr + (expert * N + rows[None, :]) * K + k[:, None], mask=mask, other=0.0).to(a.dtype)
        if QUANT == 2:  # one scale per 128 x 128 tile: scale this K step's partial product per output row
            s = tl.load(
                scale_ptr + (expert * tl.cdiv(N, 128) + rows // 128) * tl.cdiv(K, 128) + k0 // 128,
                mask=rows_ok,
                other=0.0,
            )
            acc += mma(tl.zeros(acc.shape, dtype=tl.float32), a, w, FP32_DOT) * s[None, :]
        else:
            acc = mma(acc, a, w, FP32_DOT)
    return acc


@triton.jit
def _grouped_gemm_kernel(
    a_ptr,
    w_ptr,
    scale_ptr,
    zeros_ptr,
    bias_ptr,
    global_ptr,
    out_ptr,
    slots_ptr,
    block_expert_ptr,
    weights_ptr,
    num_slots,
    N,
    K,
    group_size,
    a_stride,
    out_stride,
    TOP_K: tl.constexpr,
    GATED: tl.constexpr,
    ACT: tl.constexpr,
    ALPHA: tl.constexpr,
    LIMIT: tl.constexpr,
    QUANT: tl.constexpr,
    HAS_ZEROS: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    FP32_DOT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """GATED (GEMM 1): a = hidden rows of the slots' tokens, W = w13 [2N, K], out[slot] = act(gate) * up.
    Otherwise (GEMM 2): a = intermediate rows of the slots, W = w2 [N, K], out[slot] = weight * a @ W.T"""
    block = tl.program_id(0)
    expert = tl.load(block_expert_ptr + block).to(tl.int64)
    if expert < 0:
        return
    slot = tl.load(slots_ptr + block * BLOCK_M + tl.arange(0, BLOCK_M))
    slot_ok = slot < num_slots
    a_row = slot // TOP_K if GATED else slot
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = n < N
    w_rows = 2 * N if GATED else N
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    acc_up = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < K
        a = tl.load(
            a_ptr + a_row[:, None] * a_stride + k[None, :], mask=slot_ok[:, None] & k_ok[None, :], other=0.0
        )
        acc = _accumulate(
            acc,
            a,
            w_ptr,
            scale_ptr,
            zeros_ptr,
            expert,
            n,
            n_ok,
            k0,
            k,
            k_ok,
            w_rows,
            K,
            group_size,
            QUANT,
            HAS_ZEROS,
            FP32_DOT,
        )
        if GATED:
            acc_up = _accumulate(
                acc_up,
                a,
                w_ptr,
                scale_ptr,
                zeros_ptr,
                expert,
                N + n,
                n_ok,
                k0,
                k,
                k_ok,
                w_rows,
                K,
                group_size,
                QUANT,
                HAS_ZEROS,
                FP32_DOT,
            )
    if QUANT == 1 or QUANT == 6:  # one multiplier per expert: fp8_tensor's scale, nvfp4's global
        expert_scale = tl.load((scale_ptr if QUANT == 1 else global_ptr) + expert)
        acc *= expert_scale
        acc_up *= expert_scale
    if HAS_BIAS:  # [E, 2N] for GEMM 1 (gate, then up), [E, N] for GEMM 2
        acc += tl.load(bias_ptr + expert * w_rows + n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
        if GATED:
            acc_up += tl.load(bias_ptr + expert * w_rows + N + n, mask=n_ok, other=0.0).to(tl.float32)[
                None, :
            ]
    if GATED:
        if ACT == 3:  # GPT-OSS: gate clamped above, up clamped both ways, (up + 1) * gate * sigmoid(a * gate)
            gate = tl.minimum(acc, LIMIT)
            up = tl.minimum(tl.maximum(acc_up, -LIMIT), LIMIT)
            e = tl.exp(-tl.abs(ALPHA * gate))  # sigmoid without overflow for very negative gates
            sig = tl.where(gate >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            out = (up + 1.0) * gate * sig
        else:
            out = activate(acc, ACT) * acc_up
    else:
        out = acc * tl.load(weights_ptr + slot, mask=slot_ok, other=0.0)[:, None]
    tl.store(
        out_ptr + slot[:, None] * out_stride + n[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=slot_ok[:, None] & n_ok[None, :],
    )


def fused_moe(spec: MoESpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.fused_moe", platform)
    quant = QUANT_CODES[spec.quant]
    use_fp32_dot = fp32_dot(spec.dtype)
    group_size = spec.group_size if spec.quant == "int4_group" else 1

    def triton_fused_moe(
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
        tokens, hidden_size = hidden.shape
        top_k = topk_ids.shape[1]
        inter = w2.shape[2] * PACKING.get(quant, 1)
        if tokens == 0:
            return torch.empty_like(hidden)
        consts, options = split_options(tuning.pick(tokens * top_k))
        block_m = consts["BLOCK_M"]
        plan = align(topk_ids, expert_map, w13.shape[0], block_m)
        slots = tokens * top_k
        intermediate = torch.empty((slots, inter), dtype=hidden.dtype, device=hidden.device)
        slot_out = torch.zeros((slots, hidden_size), dtype=torch.float32, device=hidden.device)
        absent = plan.block_expert  # stands in for the tensors a constexpr switches off; never read
        shared = dict(
            num_slots=slots,
            TOP_K=top_k,
            ACT=SWIGLU_OAI if activation == "swiglu_oai" else ACTIVATION_CODES[activation],
            ALPHA=SWIGLU_OAI_ALPHA,
            LIMIT=SWIGLU_OAI_LIMIT,
            QUANT=quant,
            HAS_ZEROS=w13_zeros is not None,
            HAS_BIAS=w13_bias is not None,
            FP32_DOT=use_fp32_dot,
            **consts,
            **options,
        )
        blocks = plan.block_expert.numel()
        _grouped_gemm_kernel[(blocks, cdiv(inter, consts["BLOCK_N"]))](
            hidden,
            w13,
            absent if w13_scale is None else w13_scale,
            absent if w13_zeros is None else w13_zeros,
            absent if w13_bias is None else w13_bias,
            absent if w13_global_scale is None else w13_global_scale,
            intermediate,
            plan.sorted_slots,
            plan.block_expert,
            topk_weights,
            N=inter,
            K=hidden_size,
            group_size=group_size,
            a_stride=hidden.stride(0),
            out_stride=intermediate.stride(0),
            GATED=True,
            **shared,
        )
        _grouped_gemm_kernel[(blocks, cdiv(hidden_size, consts["BLOCK_N"]))](
            intermediate,
            w2,
            absent if w2_scale is None else w2_scale,
            absent if w2_zeros is None else w2_zeros,
            absent if w2_bias is None else w2_bias,
            absent if w2_global_scale is None else w2_global_scale,
            slot_out,
            plan.sorted_slots,
            plan.block_expert,
            topk_weights,
            N=hidden_size,
            K=inter,
            group_size=group_size,
            a_stride=intermediate.stride(0),
            out_stride=slot_out.stride(0),
            GATED=False,
            **shared,
        )
        return slot_out.view(tokens, top_k, hidden_size).sum(dim=1).to(hidden.dtype)

    return triton_fused_moe
