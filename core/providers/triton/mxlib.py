"""Device helpers for the microscaling formats (anyaccel.ops.microscaling), shared by the Triton mx kernels:
e2m1 and e8m0 decoding and encoding in registers, and loading a dequantized operand tile."""

from __future__ import annotations

import triton
import triton.language as tl

MXFP8, MXFP4, NVFP4 = 0, 1, 2  # values of the format constexprs
NONE = -1  # an unquantized operand
FORMAT_CODES = {"mxfp8": MXFP8, "mxfp4": MXFP4, "nvfp4": NVFP4, "none": NONE}


@triton.jit
def e2m1_value(code):
    """int32 e2m1 codes (0..15) -> float32: bit 3 the sign, bits 2..1 the exponent (bias 1), bit 0 the
    mantissa; exponent 0 is subnormal (0 or 0.5)."""
    e = (code >> 1) & 3
    m = (code & 1).to(tl.float32)
    binade = (1 << tl.maximum(e - 1, 0)).to(tl.float32)
    mag = tl.where(e == 0, m * 0.5, binade * (1.0 + m * 0.5))
    return tl.where((code & 8) != 0, -mag, mag)


@triton.jit
def e2m1_code(y):
    """float32 y (already divided by its scale) -> int32 e2m1 code: nearest, ties to the even code,
    saturating at 6 (the midpoints 0.25, 0.75, ... count strictly where the lower code is even)."""
    mag = tl.abs(y)
    code = (mag > 0.25).to(tl.int32) + (mag >= 0.75).to(tl.int32) + (mag > 1.25).to(tl.int32)
    code += (mag >= 1.75).to(tl.int32) + (mag > 2.5).to(tl.int32) + (mag >= 3.5).to(tl.int32)
    code += (mag > 5.0).to(tl.int32)
    return tl.where(y < 0, code | 8, code)


@triton.jit
def e8m0_value(s):
    """uint8 e8m0 -> float32 2^(s - 127) built from its bits (exact); 255 is NaN. Byte 0 (2^-127, below
    float32's normal range) reads as 0: it only scales all-zero blocks in practice."""
    si = s.to(tl.int32)
    value = (si << 23).to(tl.float32, bitcast=True)
    return tl.where(si == 255, float("nan"), value)


@triton.jit
def mx_exponent(amax, EMAX: tl.constexpr):
    """OCP's shared exponent floor(log2(amax)) - EMAX from amax's float32 exponent bits, clamped to
    [-127, 127] (zero and subnormal amax give -127)."""
    biased = (amax.to(tl.int32, bitcast=True) >> 23) & 0xFF
    return tl.minimum(tl.maximum(biased - 127 - EMAX, -127), 127)


@triton.jit
def load_operand(q_ptr, s_ptr, r, k, mask, K, FMT: tl.constexpr):
    """The float32 values (block scale applied, no global) of rows r and columns k of a contiguous operand
    [rows, K] in format FMT: elements at q_ptr, row-major scales at s_ptr."""
    if FMT == 0:  # mxfp8
        v = tl.load(q_ptr + r * K + k, mask=mask, other=0.0).to(tl.float32)
        s = e8m0_value(tl.load(s_ptr + r * (K // 32) + k // 32, mask=mask, other=127))
    else:  # two e2m1 per byte, element 2i in the low nibble
        byte = tl.load(q_ptr + r * (K // 2) + k // 2, mask=mask, other=0).to(tl.int32)
        v = e2m1_value((byte >> ((k & 1) * 4)) & 15)
        if FMT == 2:
            s = tl.load(s_ptr + r * (K // 16) + k // 16, mask=mask, other=0.0).to(tl.float32)
        else:
            s = e8m0_value(tl.load(s_ptr + r * (K // 32) + k // 32, mask=mask, other=127))
    return v * s
