"""quant.w4a16_gemm (affine format) and quant.w8a16_gemm in float32, in C (csrc/quant.c) on the weights as
stored: GGUF Q4_0 / Q4_1 / Q4_K through the affine format, Q8_0 / Q6_K through the int8 group format; and
their int8-activation forms quant.w4a8_gemm / quant.w8a8_gemm (csrc/q8dot.c: integer dot products).

A few rows (decode) stream the packed weights once per call, decoding in registers. Many rows (prefill)
dequantize the weight into a float32 scratch once per call and multiply it with oneDNN (onednn.many_rows):
streaming would decode every weight again for each tile of 4 rows.
"""

from __future__ import annotations

import torch

from anyaccel.ops.a8 import int8_blocks
from anyaccel.ops.base import expect, expect_tensor

from ..native import native, ptr
from ..onednn import many_rows

FEW_ROWS = 16  # from here on dequantize + BLAS is faster than streaming the packed weights per 4 rows
# the affine scales' dtypes as the C kernels number them (csrc/scales.h)
SCALE_KINDS = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def _check_x(op: str, x: torch.Tensor, k: int) -> None:
    expect_tensor(op, "x", x, dtype=torch.float32, shape=(None, k))
    expect(op, x.stride(-1) == 1, "x must have unit stride along K")


def native_w4a16_affine(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The affine format only: qweight [N, K/8] int32, scales and qzeros (offsets) [N, K/G] in float32,
    float16 or bfloat16 (both the same), read as stored."""
    return _w4_affine(x, qweight, scales, qzeros, g_idx, bias, int8=False)


def native_w4a8_affine(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """native_w4a16_affine with the activations quantized to int8 per 32 (csrc/q8dot.c)."""
    return _w4_affine(x, qweight, scales, qzeros, g_idx, bias, int8=True)


def native_w8a16(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    return _w8_group(x, qweight, scales, bias, int8=False)


def native_w8a8(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """native_w8a16 with the activations quantized to int8 per 32 (csrc/q8dot.c)."""
    return _w8_group(x, qweight, scales, bias, int8=True)


def _w4_affine(x, qweight, scales, qzeros, g_idx, bias, *, int8: bool) -> torch.Tensor:
    """int8: the activations quantized per 32 features (quant.w4a8_gemm), else as given (w4a16_gemm)."""
    op = "quant.w4a8_gemm" if int8 else "quant.w4a16_gemm"
    m, k = x.shape
    n, groups = scales.shape
    _check_x(op, x, qweight.shape[1] * 8)
    expect(op, qzeros is not None and g_idx is None, "the affine format: offsets (qzeros), no g_idx")
    expect(
        op,
        scales.dtype in SCALE_KINDS and qzeros.dtype == scales.dtype,
        f"scales and qzeros must share one of {tuple(SCALE_KINDS)}, got {scales.dtype} and {qzeros.dtype}",
    )
    kind = SCALE_KINDS[scales.dtype]
    # held in names until the call returns: a temporary's memory could be freed once ptr() has read it
    qweight, scales, offsets = qweight.contiguous(), scales.contiguous(), qzeros.contiguous()
    bias = None if bias is None else bias.contiguous()
    lib = native()
    if m >= FEW_ROWS:
        w = torch.empty(n, k, dtype=torch.float32)
        lib.anyaccel_w4_affine_dequant_f32(
            ptr(qweight), n, k, ptr(scales), ptr(offsets), kind, k // groups, ptr(w)
        )
        return many_rows(int8_blocks(x) if int8 else x, w, bias)
    out = torch.empty(m, n, dtype=torch.float32)
    if m == 0:
        return out
    gemm = lib.anyaccel_w4_affine_q8 if int8 else lib.anyaccel_w4_affine_f32
    args = (ptr(x), m, k, x.stride(0), ptr(qweight), n, ptr(scales), ptr(offsets), kind, k // groups)
    if gemm(*args, ptr(bias), ptr(out)):
        raise MemoryError(f"{op} (cpu): out of memory for the per-call sums of x")
    return out


def _w8_group(x, qweight, scales, bias, *, int8: bool) -> torch.Tensor:
    op = "quant.w8a8_gemm" if int8 else "quant.w8a16_gemm"
    m, k = x.shape
    n, groups = scales.shape
    _check_x(op, x, qweight.shape[1])
    qweight, scales = qweight.contiguous(), scales.contiguous()
    bias = None if bias is None else bias.contiguous()
    lib = native()
    if m >= FEW_ROWS:
        w = torch.empty(n, k, dtype=torch.float32)
        lib.anyaccel_w8_group_dequant_f32(ptr(qweight), n, k, ptr(scales), k // groups, ptr(w))
        return many_rows(int8_blocks(x) if int8 else x, w, bias)
    out = torch.empty(m, n, dtype=torch.float32)
    if m == 0:
        return out
    args = (ptr(x), m, k, x.stride(0), ptr(qweight), n, ptr(scales), k // groups, ptr(bias), ptr(out))
    if not int8:
        lib.anyaccel_w8_group_f32(*args)
    elif lib.anyaccel_w8_group_q8(*args):
        raise MemoryError(f"{op} (cpu): out of memory for the quantized x")
    return out
