"""quant.mx_gemm through FlashInfer's block-scaled GEMMs, and quant.quantize_mx (nvfp4) through fp4_quantize.

mx_gemm, quantized activations only (the block-scaled tensor cores multiply two block-scaled operands):
- nvfp4 x nvfp4: `mm_fp4(a, w.T, a_sf, w_sf.T, alpha, backend="cutlass", use_nvfp4=True)`. FlashInfer's
  nvfp4 carries no global scale in the operands: alpha = a_global * w_global (our real = e2m1 * scale *
  global) multiplies the product.
- mxfp8 x mxfp8: `mm_mxfp8(a, w.T, a_sf, w_sf, backend="cutlass")` with 1-D 128x4-swizzled e8m0 scales.
- mxfp8 x mxfp4: `group_gemm_mxfp8_mxfp4_nt_groupwise` with one group (m_indptr [0, M4]); its scales are
  CUTLASS's block-scaled atoms, i.e. the 128x4 layout of each group. Its m_indptr entries must be multiples
  of 4, so M is padded up to M4 rows per call (a copy only when M % 4 != 0) and the output sliced back.
All read the weight's scales in the 128x4 layout (anyaccel.ops.mx_swizzle): `prepare` makes it once at
load. The activations' scales arrive row-major from quant.quantize_mx and are swizzled per call (a copy of
M x K/16 bytes). The bias is added to the output (none of the GEMMs takes one).

quantize_mx, nvfp4 from fp16/bf16: `fp4_quantize(x, global, 16, is_sf_swizzled_layout=False,
is_global_scale_inversed=True)`: our global is the dequantization scale, FlashInfer's the inverse. The mx
formats are not served: FlashInfer rounds their e8m0 scale up from amax / elem_max, not OCP's floor rule.
"""

from __future__ import annotations

import torch
from flashinfer import fp4_quantize, mm_fp4, mm_mxfp8
from flashinfer.gemm import group_gemm_mxfp8_mxfp4_nt_groupwise

from anyaccel.ops.mx import MXGemmSpec, MXQuantSpec
from anyaccel.ops.mx_swizzle import swizzle_128x4


def prepare(spec: MXGemmSpec, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    """w_scale [N, K/block] row-major -> its 128x4 layout: [N_pad, cols_pad] e4m3 (nvfp4), flat uint8
    (mxfp8, as mm_mxfp8 reads it), or [1, N_pad, K/32] (mxfp4, one group of the group GEMM, with w as
    [1, N, K/2]); w itself is already the K-major [N, K(/2)] the libraries read."""
    scale, w = weights["w_scale"], weights["w"]
    assert scale is not None and w is not None
    swizzled = swizzle_128x4(scale)
    if spec.weight_format == "mxfp4":
        return {**weights, "w": w.unsqueeze(0), "w_scale": swizzled.unsqueeze(0)}
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

    indptrs: dict[tuple[int, torch.device], torch.Tensor] = {}  # one small device tensor per row count

    def mxfp8_mxfp4_gemm(
        a, w, w_scale, out_dtype, a_scale=None, w_global_scale=None, a_global_scale=None, bias=None
    ):
        m = a.shape[0]
        rows = -(-m // 4) * 4
        if rows != m:
            a = torch.nn.functional.pad(a.view(torch.uint8), (0, 0, 0, rows - m)).view(a.dtype)
        m_indptr = indptrs.get((rows, a.device))
        if m_indptr is None:
            m_indptr = indptrs[(rows, a.device)] = torch.tensor([0, rows], dtype=torch.int32, device=a.device)
        out = group_gemm_mxfp8_mxfp4_nt_groupwise(
            a, w, swizzle_128x4(a_scale), w_scale, m_indptr, out_dtype=dtype
        )
        return finish(out[:m], bias)

    return {"nvfp4": nvfp4_gemm, "mxfp8": mxfp8_gemm, "mxfp4": mxfp8_mxfp4_gemm}[spec.weight_format]


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
