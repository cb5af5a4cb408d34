"""Device helpers shared by the Triton kernels (imported only by kernel modules: it imports triton)."""

from __future__ import annotations

import triton
import triton.language as tl

SILU, GELU, GELU_TANH = 0, 1, 2  # values of the ACT constexpr
ACTIVATION_CODES = {"silu": SILU, "gelu": GELU, "none": GELU, "tanh": GELU_TANH}


@triton.jit
def mma(acc, a, b, FP32_DOT: tl.constexpr):
    """acc + a @ b. FP32_DOT: multiply fp32 operands in IEEE precision (see launch.fp32_dot)."""
    if FP32_DOT:
        out = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        out = tl.dot(a, b, acc)
    return out


@triton.jit
def activate(g, ACT: tl.constexpr):
    """The gated MLP's activation of an fp32 gate: silu, gelu (erf) or gelu (tanh)."""
    if ACT == 0:
        out = g / (1.0 + tl.exp(-g))
    elif ACT == 1:
        out = 0.5 * g * (1.0 + tl.math.erf(g * 0.7071067811865476))
    else:
        inner = 0.7978845608028654 * (g + 0.044715 * g * g * g)
        out = g / (1.0 + tl.exp(-2.0 * inner))  # 0.5 * (1 + tanh(inner)) = sigmoid(2 * inner)
    return out


@triton.jit
def soft_cap(s, SOFTCAP: tl.constexpr, cap):
    """cap * tanh(s / cap) when SOFTCAP, written with exp so every backend has it."""
    if SOFTCAP:
        s = cap * (1.0 - 2.0 / (tl.exp(2.0 * s / cap) + 1.0))
    return s


@triton.jit
def saturate_fp8(x, FP8_MAX: tl.constexpr, ROUND: tl.constexpr, MIN_EXP: tl.constexpr):
    """fp32 x clamped to the e4m3 range; with ROUND also rounded to nearest even on the e4m3 grid (3 mantissa
    bits, subnormals below 2^MIN_EXP), so the caller's conversion is exact (launch.round_fp8_in_kernel)."""
    x = tl.clamp(x, -FP8_MAX, FP8_MAX)
    if ROUND:
        ulp = tl.exp2(tl.floor(tl.log2(tl.maximum(tl.abs(x), 2.0**MIN_EXP))) - 3.0)
        x = (
            (x / ulp + 12582912.0) - 12582912.0
        ) * ulp  # adding 1.5 * 2^23 rounds to an integer, ties to even
    return x
