"""quant.mx_gemm on mx.quantized_matmul's "mxfp8", "mxfp4" and "nvfp4" modes.

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
