"""Emulator of flashinfer.gemm.gemm_fp8_nt_groupwise (flashinfer-python 0.7.4), CUTLASS backend.

a [m, k] and b [n, k] fp8 (e4m3 or e5m2, the same); out = (a * a_scale) @ (b * b_scale).T with a's scales
per 1 x 128 (row, k-block) and b's per 128 x 128 tile. scale_major_mode "K": a_scale [m, k/128] column-major,
b_scale [n/128, k/128]; "MN": a_scale [k/128, m], b_scale [k/128, n/128], both contiguous. out_dtype
bf16/fp16 (fp32 is rejected for fp8 GEMMs). CUTLASS: @supported_compute_capability([100, 103, 107, 120,
121]); other backends are not emulated."""

from __future__ import annotations

import torch

from .. import arch
from ..errors import require
from .gemm_mx import group_gemm_mxfp8_mxfp4_nt_groupwise, mm_fp4, mm_mxfp8

__all__ = ["gemm_fp8_nt_groupwise", "group_gemm_mxfp8_mxfp4_nt_groupwise", "mm_fp4", "mm_mxfp8"]

CUTLASS_CAPABILITIES = (100, 103, 107, 120, 121)
FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


def gemm_fp8_nt_groupwise(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    scale_major_mode: str | None = None,
    mma_sm: int = 1,
    scale_granularity_mnk: tuple[int, int, int] = (1, 128, 128),
    out: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
    backend: str = "cutlass",
) -> torch.Tensor:
    require(backend == "cutlass", f"backend {backend!r} is not emulated", NotImplementedError)
    cc = arch.sm_version()
    if cc not in CUTLASS_CAPABILITIES:
        raise RuntimeError(f"gemm_fp8_nt_groupwise (cutlass) is not supported on compute capability {cc}")
    if scale_major_mode is None:
        raise ValueError("scale_major_mode is required in CUTLASS")
    require(
        scale_major_mode in ("K", "MN"), f"scale_major_mode must be 'K' or 'MN', got {scale_major_mode!r}"
    )
    require(mma_sm in (1, 2), "mma_sm must be 1 or 2")
    require(
        tuple(scale_granularity_mnk) == (1, 128, 128),
        "only (1, 128, 128) granularity is emulated",
        NotImplementedError,
    )
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"Shape mismatch. a.shape = {a.shape}, b.shape = {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Shape mismatch. a.shape[1] = {a.shape[1]}, b.shape[1] = {b.shape[1]}")
    require(
        a.dtype in FP8 and b.dtype == a.dtype, f"a and b must share an fp8 dtype, got {a.dtype}, {b.dtype}"
    )
    require(
        a.is_contiguous() and b.is_contiguous(),
        "a must be row-major and b column-major (both [*, k] contiguous)",
    )
    dtype = out.dtype if out is not None else (out_dtype or torch.bfloat16)
    require(dtype in (torch.bfloat16, torch.float16), f"Unsupported output dtype {dtype} for fp8 GEMM")
    m, k = a.shape
    n = b.shape[0]
    require(k % 128 == 0 and n % 128 == 0, f"n ({n}) and k ({k}) must be multiples of 128")
    kb, nb = k // 128, n // 128
    for t in (a_scale, b_scale):
        require(t.dtype == torch.float32, "scales must be float32")
    if scale_major_mode == "K":
        require(
            a_scale.shape == (m, kb) and (m == 1 or a_scale.stride(0) == 1),
            "a_scale: column-major [m, k/128]",
        )
        require(b_scale.shape == (nb, kb) and b_scale.is_contiguous(), "b_scale: [n/128, k/128] row-major")
        sa, sb = a_scale, b_scale
    else:
        require(a_scale.shape == (kb, m) and a_scale.is_contiguous(), "a_scale: [k/128, m] contiguous (MN)")
        require(
            b_scale.shape == (kb, nb) and b_scale.is_contiguous(), "b_scale: [k/128, n/128] contiguous (MN)"
        )
        sa, sb = a_scale.T, b_scale.T
    af = a.float() * sa.repeat_interleave(128, dim=1)
    bf = b.float() * sb.repeat_interleave(128, dim=0).repeat_interleave(128, dim=1)
    result = af @ bf.T
    if out is not None:
        require(out.shape == (m, n), "out must be [m, n]")
        out.copy_(result)
        return out
    return result.to(dtype)
