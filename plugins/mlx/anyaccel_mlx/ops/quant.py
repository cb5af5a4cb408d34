"""quant.w4a16_gemm on mx.quantized_matmul (MLX's affine 4-bit format).

GPTQ and AWQ checkpoints hold the same information as MLX's affine format in another arrangement, so a
weight is repacked once, the first time a kernel sees it (kernels/quant.py caches the result per weight
tensor), like a layer's post-load weight processing:
- MLX wants w [N, K/8] uint32 (8 nibbles along the input dim, low bits first), scales and biases [N, K/G],
  and computes q * scale + bias. The contract's (q - zero) * scale is bias = -zero * scale.
- GPTQ qweight [K/8, N] is that packing transposed; AWQ packs along N in its interleaved order and is
  unpacked and repacked. Zeros come from qzeros (GPTQ v1 stores zero - 1) or are 8 (symmetric).
- The contract's affine format (GGUF Q4_0/Q4_1/Q4_K) is MLX's own layout: qweight [N, K/8] is viewed as
  uint32, and its float32 scales and offsets are MLX's scales and biases, with no repacking.
- quant.w8a16_gemm (int8 q * scale, GGUF Q8_0) is MLX's 8-bit affine format with q + 128 stored unsigned and
  a bias of -128 scales (groups of 32, 64 or 128; Q6_K's groups of 16 are declined).
- Scales and biases are kept in float32 and the product is computed in float32, then rounded once: in half
  precision q * scale + bias rounds two large terms whose difference is the weight (a zero point of 15
  makes the bias 15 scales), which costs 10x the fp16 tolerance; in float32 the bias is exact.
- GPTQ act-order (g_idx) is served by permuting the input channels so every group is contiguous: the
  weight's columns once at repack time, x's columns on every call (one gather). It requires every group to
  hold exactly G channels, which GPTQ's act-order produces; other g_idx are rejected with a clear error.
MLX's mxfp4 / nvfp4 / mxfp8 modes are floating-point formats with shared e8m0 / e4m3 scales and no zero
point: no format of the w4a16 contract (integer GPTQ / AWQ) maps onto them; they serve quant.mx_gemm
(ops/mx.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

INT4 = 4


@dataclass(frozen=True)
class AffineWeight:
    """A weight in MLX's affine format. perm: input-channel order of act-order weights (None: identity)."""

    w: mx.array  # [N, K/8] uint32
    scales: mx.array  # [N, K/G] float32
    biases: mx.array  # [N, K/G] float32
    group_size: int
    perm: mx.array | None = None
    bits: int = INT4


def affine_bias(scales: mx.array, zeros: mx.array | None) -> mx.array:
    """MLX's affine bias for (q - zero) * scale; zero 8 (symmetric) when no zeros are given."""
    zero = mx.array(8, dtype=scales.dtype) if zeros is None else zeros.astype(scales.dtype)
    return -zero * scales


def matmul(x: mx.array, weight: AffineWeight, bias: mx.array | None = None) -> mx.array:
    """x [M, K] @ dequant(weight).T (+ bias) -> [M, N] in x's dtype."""
    if weight.perm is not None:
        x = x[:, weight.perm]
    out = mx.quantized_matmul(
        x.astype(mx.float32),
        weight.w,
        weight.scales,
        weight.biases,
        transpose=True,
        group_size=weight.group_size,
        bits=weight.bits,
    )
    return (out if bias is None else out + bias).astype(x.dtype)
