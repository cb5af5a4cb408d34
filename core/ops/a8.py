"""quant.w4a8_gemm, quant.w8a8_gemm: the group-quantized weights of w4a16_gemm / w8a16_gemm times activations
quantized to int8 inside the op, in blocks of 32 input features: the arithmetic of llama.cpp's CPU backend
on GGUF files (its Q8_0 / Q8_1 activation blocks), which lets a kernel multiply bytes with integer dot
products instead of decoding every weight to floating point.

The activations x [M, K] (float32, fp16 or bf16) are replaced by x' before the product (`int8_blocks`):
    d[m, b]  = max |x[m, 32b : 32b + 32]| / 127                      (in float32)
    x'[m, k] = d[m, k // 32] * round_half_even(x[m, k] / d[m, k // 32])   (0 where d is 0)
and the result is w4a16_gemm / w8a16_gemm of x' with the same weights, arguments and layouts: a kernel is
checked exactly, against the float64 product of x' with the dequantized weights. The difference from the
A16 ops' result (up to max|x| / 254 per input feature) is the price of the format, paid only where a model
asks for it (`LLM(activations="int8")`). K must be a multiple of 32.
"""

from __future__ import annotations

import functools

import torch

from .base import OpDef, expect
from .common import preferred_dtype
from .quant import (
    W4A16Spec,
    W8A16Spec,
    _check_w4,
    _check_w4_spec,
    _check_w8,
    _check_w8_spec,
    _fake_w4a16,
    _fake_w8a16,
)

BLOCK = 32  # input features per activation scale
ACTIVATIONS = ("float", "int8")  # what a model may ask of its quantized layers: the A16 or the A8 ops


def int8_blocks(x: torch.Tensor) -> torch.Tensor:
    """x [M, K] -> x' [M, K] float32, the contract's quantized activations (used by the reference and the
    oracle, so that both read the contract from one place)."""
    m, k = x.shape
    blocks = x.float().reshape(m, k // BLOCK, BLOCK)
    d = blocks.abs().amax(-1, keepdim=True) / 127
    q = torch.where(d > 0, torch.round(blocks / torch.where(d > 0, d, 1.0)), 0.0)
    return (q * d).reshape(m, k)


def w4a8_gemm(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """out [M, N] = int8_blocks(x) @ dequant(qweight).T + bias, in spec.dtype (the dtype of x).

    The arguments, formats (gptq, awq, affine) and layouts are those of quant.w4a16_gemm; K a multiple of 32.
    """
    raise NotImplementedError


def w8a8_gemm(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """out [M, N] = int8_blocks(x) @ (qweight * scales per group).T + bias, in spec.dtype.

    The arguments and layouts are those of quant.w8a16_gemm (qweight [N, K] int8, scales [N, K/G] float32);
    K a multiple of 32.
    """
    raise NotImplementedError


def _blocks_of_32(op: str, k: int) -> None:
    expect(op, k % BLOCK == 0, f"K must be a multiple of {BLOCK} (the activation blocks), got {k}")


def _check_w4a8_spec(spec: W4A16Spec) -> None:
    _check_w4_spec(spec, "quant.w4a8_gemm")
    _blocks_of_32("quant.w4a8_gemm", spec.k)


def _check_w8a8_spec(spec: W8A16Spec) -> None:
    _check_w8_spec(spec, "quant.w8a8_gemm")
    _blocks_of_32("quant.w8a8_gemm", spec.k)


W4A8_GEMM = OpDef(
    "quant.w4a8_gemm",
    w4a8_gemm,
    W4A16Spec,
    _fake_w4a16,
    lambda p: W4A16Spec(preferred_dtype(p), "affine", 32),
    check_spec=_check_w4a8_spec,
    check_args=functools.partial(_check_w4, op="quant.w4a8_gemm"),
    weights=("qweight", "scales", "qzeros", "g_idx"),
)
W8A8_GEMM = OpDef(
    "quant.w8a8_gemm",
    w8a8_gemm,
    W8A16Spec,
    _fake_w8a16,
    lambda p: W8A16Spec(preferred_dtype(p)),
    check_spec=_check_w8a8_spec,
    check_args=functools.partial(_check_w8, op="quant.w8a8_gemm"),
    weights=("qweight", "scales"),
)
