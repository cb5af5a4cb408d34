"""quant.mx_gemm through FlashInfer's block-scaled GEMMs, and quant.quantize_mx (nvfp4) through fp4_quantize.

mx_gemm, quantized activations only (the block-scaled tensor cores multiply two block-scaled operands):
- nvfp4 x nvfp4: `mm_fp4(a, w.T, a_sf, w_sf.T, alpha, backend="cutlass", use_nvfp4=True)`. FlashInfer's
  nvfp4 carries no global scale in the operands: alpha = a_global * w_global (our real = e2m1 * scale *
  global) multiplies the product.
- mxfp8 x mxfp8: `mm_mxfp8(a, w.T, a_sf, w_sf, backend="cutlass")` with 1-D 128x4-swizzled e8m0 scales.
Both read the weight's scales in the 128x4 layout (anyaccel.ops.mx_swizzle): `prepare` makes it once at
load. The activations' scales arrive row-major from quant.quantize_mx and are swizzled per call (a copy of
M x K/16 bytes). The bias is added to the output (neither GEMM takes one).

quantize_mx, nvfp4 from fp16/bf16: `fp4_quantize(x, global, 16, is_sf_swizzled_layout=False,
is_global_scale_inversed=True)`: our global is the dequantization scale, FlashInfer's the inverse. The mx
formats are not served: FlashInfer rounds their e8m0 scale up from amax / elem_max, not OCP's floor rule.
"""

from __future__ import annotations

import torch
from flashinfer import fp4_quantize, mm_fp4, mm_mxfp8

from anyaccel.ops.mx import MXGemmSpec, MXQuantSpec
from anyaccel.ops.mx_swizzle import swizzle_128x4


def prepare(spec: MXGemmSpec, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    """w_scale [N, K/block] row-major -> its 128x4 layout: [N_pad, cols_pad] e4m3 (nvfp4), or flat uint8
    (mxfp8, as mm_mxfp8 reads it); w itself is already the K-major [N, K(/2)] both libraries read."""
    scale = weights["w_scale"]
    assert scale is not None
    swizzled = swizzle_128x4(scale)
    return {**weights, "w_scale": swizzled.reshape(-1) if spec.weight_format == "mxfp8" else swizzled}


def mx_gemm(spec: MXGemmSpec, platform):
    dtype = spec.dtype

    def finish(out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return out if bias is None else out + bias

    def nvfp4_gemm(
        a, w, w_scale, out_dtype, a_scale=None, w_global_scale=None, a_global_scale=None, bias=None
    ):
        alpha = a_global_scale * w_global_scale
        out = mm_fp4(
            a,
            w.T,
            swizzle_128x4(a_scale),
            w_scale.T,
            alpha,
            dtype,
            block_size=16,
            backend="cutlass",
            use_nvfp4=True,
        )
        return finish(out, bias)

    def mxfp8_gemm(
        a, w, w_scale, out_dtype, a_scale=None, w_global_scale=None, a_global_scale=None, bias=None
    ):
        out = mm_mxfp8(
            a, w.T, swizzle_128x4(a_scale).reshape(-1), w_scale, out_dtype=dtype, backend="cutlass"
        )
        return finish(out, bias)

    return nvfp4_gemm if spec.weight_format == "nvfp4" else mxfp8_gemm


def quantize_mx(spec: MXQuantSpec, platform):
    def nvfp4_quantize(x, fmt, global_scale=None):
        q, sf = fp4_quantize(
            x,
            global_scale,
            16,
            sf_use_ue8m0=False,
            is_sf_swizzled_layout=False,
            is_global_scale_inversed=True,
            nvfp4_4over6=None,
        )
        return q.view(torch.uint8), sf.view(torch.float8_e4m3fn)

    return nvfp4_quantize
