"""quant.mx_gemm on mx.quantized_matmul's "mxfp8", "mxfp4" and "nvfp4" modes, and quant.quantize_mx in MLX
array ops by the contract's rules.

The contract's block-scaled layouts (anyaccel.ops.microscaling) are MLX's, byte for byte: MLX packs 32 /
bits elements per uint32 word, the first in the low bits, which on a little-endian machine is the contract's
row of bytes (e2m1 element 2i in the low nibble of byte i, e4m3 elements one per byte) viewed as uint32; its
scales are uint8 [N, K/group] holding e8m0 (mxfp4, mxfp8, groups of 32) or e4m3 (nvfp4, groups of 16) bits.
So a weight crosses as a view, and the scales as uint8 bits. quantized_matmul has no global scale: nvfp4's
multiplies the output once. mx.quantize is not used: it picks scales by another rule than the contract's
OCP floor, and takes nvfp4's global in a convention of its own; the matmul reads any scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

MODES = {"mxfp8": (32, 8), "mxfp4": (32, 4), "nvfp4": (16, 4)}  # mode -> (group size, bits)


@dataclass(frozen=True)
class BlockScaledWeight:
    """A contract weight as quantized_matmul reads it: w [N, K * bits / 32] uint32, scales [N, K/group]
    uint8, the float32 global (nvfp4) or None."""

    mode: str
    w: mx.array
    scales: mx.array
    global_scale: mx.array | None = None


def matmul(x: mx.array, weight: BlockScaledWeight, bias: mx.array | None = None) -> mx.array:
    """x [M, K] (float32) @ dequant(weight).T (* global) (+ bias) -> [M, N] float32."""
    group, bits = MODES[weight.mode]
    out = mx.quantized_matmul(
        x, weight.w, weight.scales, transpose=True, group_size=group, bits=bits, mode=weight.mode
    )
    if weight.global_scale is not None:
        out = out * weight.global_scale
    return out if bias is None else out + bias.astype(mx.float32)


# e2m1 rounding: the midpoints between consecutive magnitudes; a tie goes to the even code (strict where
# the lower code is even), as in anyaccel.ops.microscaling
_MIDPOINTS = (
    (0.25, True),
    (0.75, False),
    (1.25, True),
    (1.75, False),
    (2.5, True),
    (3.5, False),
    (5.0, True),
)
_EMAX = {"mxfp8": 8, "mxfp4": 2}  # exponent of the element type's largest binade (448, 6)


def _e2m1_codes(y: mx.array) -> mx.array:
    mag = mx.abs(y)
    code = mx.zeros(y.shape, dtype=mx.uint8)
    for mid, strict in _MIDPOINTS:
        code = code + (mag > mid if strict else mag >= mid).astype(mx.uint8)
    return mx.where(y < 0, code | 8, code)


def quantize(x: mx.array, mode: str, global_scale: mx.array | None = None) -> tuple[mx.array, mx.array]:
    """x [M, K] -> (elements as uint8 bits [M, K] or packed [M, K/2], scale bits uint8 [M, K/block]): OCP's
    e8m0 exponent floor(log2(amax)) - emax read from amax's float32 exponent bits, or nvfp4's
    e4m3(amax / (6 * global)); elements nearest-even and saturating (mx.to_fp8 rounds and saturates so)."""
    group, _ = MODES[mode]
    m, k = x.shape
    blocks = x.astype(mx.float32).reshape(m, k // group, group)
    amax = mx.max(mx.abs(blocks), axis=-1, keepdims=True)
    if mode == "nvfp4":
        scale_bits = mx.to_fp8(mx.minimum(amax / (6.0 * global_scale), 448.0))
        full = mx.from_fp8(scale_bits, mx.float32) * global_scale
        scaled = mx.where(full > 0, blocks / mx.where(full > 0, full, 1.0), 0.0)
    else:
        biased = (amax.view(mx.uint32) >> 23) & 0xFF
        exp = mx.clip(biased.astype(mx.int32) - 127 - _EMAX[mode], -127, 127)
        scale_bits = (exp + 127).astype(mx.uint8)
        scaled = blocks * ((127 - exp).astype(mx.uint32) << 23).view(mx.float32)  # exact 2^-exp
    scaled = scaled.reshape(m, k)
    if mode == "mxfp8":
        elements = mx.to_fp8(mx.clip(scaled, -448.0, 448.0))
    else:
        codes = _e2m1_codes(scaled)
        elements = codes[:, 0::2] | (codes[:, 1::2] << 4)
    return elements, scale_bits.reshape(m, k // group)
