"""Emulators of flashinfer.gemm.mm_fp4, mm_mxfp8 (flashinfer-python 0.7.4, gemm/gemm_base.py), CUTLASS
backend, and group_gemm_mxfp8_mxfp4_nt_groupwise (its docstring below): the block-scaled GEMMs.

mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size, use_8x4_sf_layout, backend,
use_nvfp4): a uint8 [m, k/2] (two e2m1 per byte, element 2i in the low nibble), b the [k/2, n] column-major
view of an [n, k/2] weight; a_descale the 128x4-swizzled e4m3 scales of a ([m_pad, k/16 padded to 4]),
b_descale the transpose of b's swizzled [n_pad, k/16 padded] scales (the runner calls the module with
b_descale.T, which must be contiguous); out = alpha * dequant(a) @ dequant(b), in bf16/fp16. Checks:
_check_mm_fp4_problem_size (dtypes, K match, block 16 with use_nvfp4, 32 without, out dtype),
_cutlass_gemm_fp4_requirement (capabilities 100/103/107/110/120/121, nvfp4 only, no 8x4 layout) and the
module's k % 32 and n % 32 (fp4_gemm_cutlass.cu). Other backends are not emulated.

mm_mxfp8(a, b, a_descale, b_descale, out, out_dtype, use_8x4_sf_layout, backend): a e4m3 [m, k], b the
[k, n] view of an [n, k] weight, both descales 1-D 128x4-swizzled e8m0 (uint8); out = dequant(a) @
dequant(b). Checks: _check_mm_mxfp8_problem_size (n, k >= 128, dtypes, swizzled lengths, out),
_cutlass_gemm_mxfp8_requirement (same capabilities; 1-D swizzled scales only) and k % 32, n % 32
(mxfp8_gemm_cutlass.cu).

The arithmetic reuses anyaccel's format module (anyaccel.ops.microscaling) and swizzle helper: these
emulators prove our argument mapping and scale layouts, not FlashInfer's kernels.
"""

from __future__ import annotations

import torch

from anyaccel.ops.microscaling import MXFP4, MXFP8, NVFP4, dequantize
from anyaccel.ops.mx_swizzle import padded_shape, unswizzle_128x4

from .. import arch
from ..errors import require

CUTLASS_CAPABILITIES = (100, 103, 107, 110, 120, 121)
ALIGNMENT = 32
OUT_DTYPES = (torch.bfloat16, torch.float16)


def _cutlass_capability(api: str) -> None:
    cc = arch.sm_version()
    if cc not in CUTLASS_CAPABILITIES:
        raise ValueError(f"{api}: backend 'cutlass' is not supported on compute capability {cc}")


def _aligned(api: str, k: int, n: int) -> None:
    require(k % ALIGNMENT == 0, f"{api}: Expected k to be divisible by {ALIGNMENT}, got k: {k}.")
    require(n % ALIGNMENT == 0, f"{api}: Expected n to be divisible by {ALIGNMENT}, got n: {n}.")


def _common(api: str, a: torch.Tensor, b: torch.Tensor, backend: str, batch_invariant: bool) -> None:
    """The emulated backend, and the problem-size checks both GEMMs open with (2-D operands, K match)."""
    require(backend == "cutlass", f"{api}: backend {backend!r} is not emulated", NotImplementedError)
    require(not batch_invariant, f"{api}: batch_invariant is not emulated", NotImplementedError)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{api} accepts 2d tensors, got {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"K dimension mismatch in {api}. got a.shape[1] = {a.shape[1]}, b.shape[0] = {b.shape[0]}"
        )


def _plain_scales(swizzled: torch.Tensor, rows: int, cols: int, what: str) -> torch.Tensor:
    """A swizzled scale buffer (any shape holding padded_rows * padded_cols bytes) -> [rows, cols]."""
    prow, pcol = padded_shape(rows, cols)
    require(
        swizzled.numel() == prow * pcol,
        f"{what}: expected {prow * pcol} swizzled scale bytes for ({rows}, {cols}), got {swizzled.numel()}",
    )
    return unswizzle_128x4(swizzled.contiguous().view(torch.uint8).reshape(prow, pcol), rows, cols)


def _write(result: torch.Tensor, out: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
    if out is None:
        return result.to(out_dtype)
    require(out.shape == result.shape and out.dtype == out_dtype, "out: [m, n] in out_dtype")
    out.copy_(result)
    return out


def mm_fp4(
    a: torch.Tensor,
    b: torch.Tensor,
    a_descale: torch.Tensor,
    b_descale: torch.Tensor,
    alpha: torch.Tensor | None = None,
    out_dtype: torch.dtype = torch.bfloat16,
    out: torch.Tensor | None = None,
    block_size: int = 16,
    use_8x4_sf_layout: bool = False,
    backend: str = "auto",
    use_nvfp4: bool = True,
    enable_pdl: bool = True,
    *,
    batch_invariant: bool = False,
) -> torch.Tensor:
    api = "mm_fp4"
    _common(api, a, b, backend, batch_invariant)
    require(
        a.dtype == torch.uint8 and b.dtype == torch.uint8,
        f"a and b must have float4_e2m1fn_x2 packed into uint8. Got {a.dtype} and {b.dtype}.",
    )
    sf_types = (torch.float8_e4m3fn, torch.uint8)
    require(
        a_descale.dtype in sf_types and b_descale.dtype in sf_types,
        f"a_descale and b_descale must have float8_e4m3fnx2 packed into uint8. "
        f"Got {a_descale.dtype} and {b_descale.dtype}.",
    )
    if alpha is not None:
        require(alpha.dtype == torch.float32, f"alpha must be a float tensor, got {alpha.dtype}")
        require(
            alpha.numel() == 1, "per-token alpha is only implemented by the 'cute-dsl' and 'cake' backends"
        )
    require(
        out_dtype in OUT_DTYPES,
        f"Unsupported output dtype: {out_dtype}. Only torch.bfloat16 and torch.float16 are supported for FP4 "
        "GEMM operations.",
    )
    if use_nvfp4 and block_size != 16:
        raise ValueError("nvfp4 only supports block_size = 16.")
    if not use_nvfp4 and block_size != 32:
        raise ValueError("mxfp4 only supports block_size = 32.")
    _cutlass_capability(api)
    if use_8x4_sf_layout:
        raise ValueError("Only TRTLLM FP4 GEMM supports 8x4 scale factor layout.")
    if not use_nvfp4:
        raise ValueError("Only cudnn and auto FP4 GEMM supports mxfp4 quantization.")
    mat2, mat2_scale = b.T, b_descale.T  # what the runner hands the CUTLASS module
    require(a.is_contiguous() and mat2.is_contiguous(), "mat1 and mat2 (b.T) must be contiguous")
    require(a_descale.is_contiguous() and mat2_scale.is_contiguous(), "scales (and b_descale.T) contiguous")
    m, k, n = a.shape[0], a.shape[1] * 2, mat2.shape[0]
    _aligned(api, k, n)
    sa = _plain_scales(a_descale, m, k // 16, "a_descale").view(torch.float8_e4m3fn)
    sb = _plain_scales(mat2_scale, n, k // 16, "b_descale").view(torch.float8_e4m3fn)
    result = dequantize(NVFP4, a, sa) @ dequantize(NVFP4, mat2, sb).T
    if alpha is not None:
        result = result * alpha.float().reshape(())
    return _write(result, out, out_dtype)


def mm_mxfp8(
    a: torch.Tensor,
    b: torch.Tensor,
    a_descale: torch.Tensor,
    b_descale: torch.Tensor,
    out: torch.Tensor | None = None,
    out_dtype: torch.dtype = torch.bfloat16,
    use_8x4_sf_layout: bool = False,
    backend: str = "auto",
    *,
    batch_invariant: bool = False,
) -> torch.Tensor:
    api = "mm_mxfp8"
    _common(api, a, b, backend, batch_invariant)
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    if n < 128 or k < 128:
        raise ValueError(f"MXFP8 requires n >= 128 and k >= 128 for CUTLASS MXFP8. got m={m}, n={n}, k={k}.")
    require(a.dtype == torch.float8_e4m3fn, f"a must be a float8_e4m3fn tensor, got a.dtype={a.dtype}")
    require(b.dtype == torch.float8_e4m3fn, f"b must be a float8_e4m3fn tensor, got b.dtype={b.dtype}")
    require(a_descale.dtype == torch.uint8, f"a_descale must be a uint8 tensor, got {a_descale.dtype}")
    require(b_descale.dtype == torch.uint8, f"b_descale must be a uint8 tensor, got {b_descale.dtype}")
    require(
        out_dtype in OUT_DTYPES, f"Unsupported output dtype: {out_dtype}. Only bf16 and fp16 are supported."
    )
    _cutlass_capability(api)
    if use_8x4_sf_layout or a_descale.ndim != 1 or b_descale.ndim != 1:
        raise ValueError(
            "cutlass mm_mxfp8 requires 1D 128x4-swizzled block scales; the provided scale layout (8x4 or 2D "
            "linear) is not supported. Use mxfp8_quantize(..., is_sf_swizzled_layout=True)."
        )
    require(a.is_contiguous() and b.T.is_contiguous(), "a [m, k] row-major, b the [k, n] view of [n, k]")
    _aligned(api, k, n)
    sa = _plain_scales(a_descale, m, k // 32, "a_descale")
    sb = _plain_scales(b_descale, n, k // 32, "b_descale")
    result = dequantize(MXFP8, a, sa) @ dequantize(MXFP8, b.T, sb).T
    return _write(result, out, out_dtype)


GROUP_GEMM_MAJORS = (10, 12)  # is_sm100a_supported (major == 10) or is_sm12x_supported (major == 12)


def _group_gemm_tiles(mma_sm: int, tile_m: int, tile_n: int, tile_k: int) -> None:
    if arch.major() == 12:
        require(mma_sm == 1, f"mma_sm must be 1, but got {mma_sm}")
        require(tile_n in (32, 64, 128), f"tile_n must be 32, 64, or 128, but got {tile_n}")
        require(tile_k == 128, f"tile_k must be 128, but got {tile_k}")
    else:
        require(mma_sm in (1, 2), f"mma_sm must be either 1 or 2, but got {mma_sm}")
        require(tile_n in (64, 128, 192, 256), f"tile_n must be one of [64, 128, 192, 256], but got {tile_n}")
        require(tile_k in (128, 256), f"tile_k must be either 128 or 256, but got {tile_k}")
    require(tile_m == 128, f"tile_m must be 128, but got {tile_m}")


def group_gemm_mxfp8_mxfp4_nt_groupwise(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    m_indptr: torch.Tensor,
    mma_sm: int = 1,
    tile_m: int = 128,
    tile_n: int = 128,
    tile_k: int = 128,
    swap_ab: bool = True,
    out: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Emulator of flashinfer.gemm.group_gemm_mxfp8_mxfp4_nt_groupwise (gemm_base.py; the scale layout of
    include/flashinfer/gemm/group_gemm_mxfp4_groupwise_sm100.cuh): a fp8 [cum_m, k] (group g is rows
    m_indptr[g]..m_indptr[g+1], each entry a multiple of 4), b uint8 [groups, n, k/2] (mxfp4), b_scale
    [groups, n_pad128, k/32] with each group in the 128x4 layout, a_scale holding each group's 128x4 block
    at row (m_indptr[g] + g * 127) // 128 * 128; out[rows of g] = dequant(a) @ dequant(b[g]).T."""
    require(
        a.dtype in (torch.float8_e4m3fn, torch.float8_e5m2), f"a must be a float8 tensor, but got {a.dtype}"
    )
    require(b.dtype == torch.uint8, f"b must be a uint8 tensor, but got {b.dtype}")
    require(a_scale.dtype == torch.uint8, f"a_scale must be a uint8 tensor, but got {a_scale.dtype}")
    require(b_scale.dtype == torch.uint8, f"b_scale must be a uint8 tensor, but got {b_scale.dtype}")
    require(m_indptr.dtype == torch.int32, f"m_indptr must be a int32 tensor, but got {m_indptr.dtype}")
    require(a.dtype == torch.float8_e4m3fn, "e5m2 activations are not emulated", NotImplementedError)
    if arch.major() not in GROUP_GEMM_MAJORS:
        raise ValueError(f"Unsupported device for MXFP4 group GEMM: sm_{arch.sm_version()}")
    _group_gemm_tiles(mma_sm, tile_m, tile_n, tile_k)
    dtype = out_dtype or (out.dtype if out is not None else torch.bfloat16)
    require(dtype in OUT_DTYPES, f"out_dtype must be either torch.bfloat16 or torch.float16, but got {dtype}")
    groups, n, k = m_indptr.shape[0] - 1, b.shape[1], b.shape[2] * 2
    require(b.shape[0] == groups, f"b.shape[0] must equal num_groups, but got {b.shape[0]} and {groups}")
    require(a.shape[1] == k, f"a.shape[1] must equal k, but got a.shape[1]={a.shape[1]}, k={k}")
    require(n % 8 == 0, f"n must be a multiple of 8, but got n={n}")
    require(k % 128 == 0, f"k must be a multiple of 128, but got k={k}")
    bounds = [int(v) for v in m_indptr.tolist()]
    require(all(v % 4 == 0 for v in bounds), "each value in m_indptr must be a multiple of 4")
    require(bounds[-1] == a.shape[0], f"m_indptr[-1] ({bounds[-1]}) must equal a.shape[0] ({a.shape[0]})")
    require(a.is_contiguous() and b.is_contiguous(), "a row-major and b [groups, n, k/2] contiguous")
    kc, n_pad = k // 32, padded_shape(n, k // 32)[0]
    require(tuple(b_scale.shape) == (groups, n_pad, kc), f"b_scale must be [{groups}, {n_pad}, {kc}]")
    sa_flat = a_scale.contiguous().view(-1)
    result = torch.zeros(a.shape[0], n, dtype=torch.float32)
    for g in range(groups):
        start, stop = bounds[g], bounds[g + 1]
        if stop == start:
            continue
        rows = stop - start
        prow = padded_shape(rows, kc)[0]
        first = (start + g * 127) // 128 * 128 * kc
        require(sa_flat.numel() >= first + prow * kc, f"a_scale too small for group {g}")
        sa = _plain_scales(sa_flat[first : first + prow * kc], rows, kc, "a_scale")
        sb = _plain_scales(b_scale[g], n, kc, "b_scale")
        result[start:stop] = dequantize(MXFP8, a[start:stop], sa) @ dequantize(MXFP4, b[g], sb).T
    return _write(result, out, dtype)
