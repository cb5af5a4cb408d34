"""quant.fp8_gemm through oneDNN's _xpu_C.fp8_gemm and quant.w4a16_gemm through _xpu_C.int4_gemm_w4a16
(vllm-xpu-kernels); quant.int8_gemm has no vendor call on Intel GPUs (its record always declines).

fp8_gemm(A [M, K], B [K, N], out_dtype, A_scale, B_scale, bias) tells the scaling by the scales' shapes:
A_scale [1] per tensor, [M, 1] per token, [M, K/128] per 1x128 group; B_scale [1], [N] per channel, or
[K/128, N/gn] per block. `prepare_fp8` turns the contract's weight (b [N, K], b_scale [1] / [N, 1] /
[ceil(N/128), K/128]) into that form once at load, as vLLM's XPU fp8 path does: B as a C-contiguous [K, N],
block scales with their rows repeated to the group width gn = gcd(N, 128) and transposed (with a single
K group, K <= 128, oneDNN takes the activations' [M, 1] scale as per token, so the blocks become per-channel
scales).

int4_gemm_w4a16(x, B, bias, scales, zero_points, group_size, g_idx) reads GPTQ's [K/8, N] int32 words
column-major (the stride of K/8 is 1), scales [K/G, N] in x's dtype and a zero point of 8 (uint4b8).
"""

from __future__ import annotations

import math

import torch

from .. import gates
from .. import vendor_ops as ops


def prepare_fp8(spec, weights: dict) -> dict:
    b, scale = weights["b"], weights["b_scale"].float()
    n = b.shape[0]
    if spec.scales == "channel":
        scale = scale.reshape(n)
    elif spec.scales == "block" and b.shape[1] <= gates.FP8_BLOCK:
        # one K group: oneDNN reads a one-column activation scale as per token, so the weight's blocks
        # become per-channel scales (exact: a block's scale repeated over its columns)
        scale = scale.repeat_interleave(gates.FP8_BLOCK, dim=0)[:n].reshape(n)
    elif spec.scales == "block":
        gn = math.gcd(n, gates.FP8_BLOCK)
        rows = torch.div(
            torch.arange(n // gn, device=scale.device) * gn, gates.FP8_BLOCK, rounding_mode="floor"
        )
        scale = scale.index_select(0, rows).t().contiguous()
    else:
        scale = scale.reshape(1)
    return weights | {"b": b.t().contiguous(), "b_scale": scale}


def fp8_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
    return ops.xpu_C.fp8_gemm(a, b, out_dtype, a_scale, b_scale, bias)


def prepare_w4(spec, weights: dict) -> dict:
    qweight, scales = weights["qweight"], weights["scales"]
    return weights | {
        "qweight": qweight.t().contiguous().t(),  # [K/8, N] with stride (1, K/8)
        "scales": scales.to(spec.dtype).contiguous(),
        "qzeros": torch.tensor([gates.W4_SYMMETRIC_ZERO], dtype=torch.int8, device=qweight.device),
    }


def w4a16(spec, platform):
    """The group size comes from the spec: with act-order, g_idx names groups of the whole layer."""
    group_size = spec.group_size

    def int4_gemm_w4a16(x, qweight, scales, qzeros=None, g_idx=None, bias=None):
        return ops.xpu_C.int4_gemm_w4a16(x, qweight, bias, scales, qzeros, group_size, g_idx)

    return int4_gemm_w4a16


def int8_gemm_unserved(a, b, a_scale, b_scale, out_dtype, bias=None):
    raise NotImplementedError("quant.int8_gemm: no vendor int8 GEMM on Intel GPUs (see the record's reason)")
