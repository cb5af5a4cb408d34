"""Emulator of flashinfer.fp4_quantize (flashinfer-python 0.7.4, quantization/fp4_quantization.py, CUDA
backend; the recipe is TensorRT-LLM's cvt_warp_fp16_to_fp4 in csrc/nv_internal/.../quantization_utils.cuh).

input fp16/bf16 [m, k] row-major, k a multiple of sf_vec_size (16 or 32). Per block of sf_vec_size values,
vecMax = max |x|; S = global_scale (1 / global_scale with is_global_scale_inversed), in float32:
- e4m3 scales (NVFP4): sf = e4m3(S * (vecMax * 1/6)), round to nearest even, saturating; the elements are
  e2m1(x * 1 / (sf * 1/S)) (0 when sf is 0), nearest even, saturating at 6.
- UE8M0 scales (sf_use_ue8m0, MXFP4): sf = e8m0(vecMax * 1/6) rounded toward +inf (cudaRoundPosInf; not
  OCP's floor rule), elements e2m1(x * 2^(127 - sf)), all zeros when sf is 0.
Returns (uint8 [m, k/2] with element 2i in the low nibble, uint8 scales [m, k/sf_vec_size] in the linear
layout, or [m_pad, cols_pad] in the 128x4 layout when is_sf_swizzled_layout). Raises as the library does
below SM100 ("requires SM100 or newer") and for sf_vec_size other than 16/32; the 8x4 layout, fp8 inputs,
the cute-dsl backend, 4over6 and batch-invariant modes are not emulated.
"""

from __future__ import annotations

import torch

from anyaccel.ops.microscaling import E4M3_MAX, e2m1_encode, pack_e2m1
from anyaccel.ops.mx_swizzle import swizzle_128x4

from .. import arch
from ..errors import require

INPUT_DTYPES = (torch.float16, torch.bfloat16)


def _ue8m0_round_up(v: torch.Tensor) -> torch.Tensor:
    """float32 v >= 0 -> e8m0 byte of the smallest power of two >= v (saturating at 254; 0 stays 0)."""
    mant, exp = torch.frexp(v)  # v = mant * 2^exp, mant in [0.5, 1)
    exponent = torch.where(mant == 0.5, exp - 1, exp)  # exact powers of two keep their exponent
    byte = (exponent + 127).clamp(0, 254)
    return torch.where(v > 0, byte, torch.zeros_like(byte)).to(torch.uint8)


def fp4_quantize(
    input: torch.Tensor,
    global_scale: torch.Tensor | None = None,
    sf_vec_size: int = 16,
    sf_use_ue8m0: bool = False,
    is_sf_swizzled_layout: bool = True,
    is_sf_8x4_layout: bool = False,
    is_global_scale_inversed: bool = False,
    enable_pdl: bool | None = None,
    backend: str = "auto",
    nvfp4_4over6: object = None,
    *,
    batch_invariant: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    api = "fp4_quantize"
    if sf_vec_size not in (16, 32):
        raise NotImplementedError("sf_vec_size can only be 16 or 32")
    require(backend in ("auto", "cuda"), f"{api}: backend {backend!r} is not emulated", NotImplementedError)
    require(nvfp4_4over6 is None, f"{api}: nvfp4_4over6 recipes are not emulated", NotImplementedError)
    require(not batch_invariant and not is_sf_8x4_layout, f"{api}: mode not emulated", NotImplementedError)
    cc = arch.sm_version()
    if cc < 100:
        raise RuntimeError(f"{api} requires SM100 or newer; got SM{cc}")
    require(
        input.dtype in INPUT_DTYPES, f"{api}: input dtype {input.dtype} not emulated", NotImplementedError
    )
    require(input.ndim == 2 and input.is_contiguous(), f"{api}: a contiguous [m, k] input is emulated")
    m, k = input.shape
    require(
        k % sf_vec_size == 0, f"{api}: k {k} is not a multiple of sf_vec_size {sf_vec_size}", AssertionError
    )
    blocks = input.float().unflatten(-1, (-1, sf_vec_size))
    vec_max = blocks.abs().amax(-1, keepdim=True)
    sixth = torch.tensor(1.0 / 6.0, dtype=torch.float32)
    if sf_use_ue8m0:
        sf = _ue8m0_round_up(vec_max * sixth)
        inv = torch.where(sf > 0, torch.exp2(127.0 - sf.float()), torch.zeros_like(vec_max))
    else:
        require(
            global_scale is not None,
            f"{api}: NVFP4 without a global scale is not emulated",
            NotImplementedError,
        )
        assert global_scale is not None
        require(
            global_scale.dtype == torch.float32 and global_scale.numel() == 1, "global_scale: float32 [1]"
        )
        g = global_scale.float().reshape(())
        s = 1.0 / g if is_global_scale_inversed else g
        sf_e4m3 = (s * (vec_max * sixth)).clamp(max=E4M3_MAX).to(torch.float8_e4m3fn)
        sf_f = sf_e4m3.float()
        inv = torch.where(sf_f > 0, 1.0 / (sf_f * (1.0 / s)), torch.zeros_like(sf_f))
        sf = sf_e4m3.view(torch.uint8)
    q = pack_e2m1(e2m1_encode((blocks * inv).flatten(-2)))
    scales = sf.squeeze(-1)
    return q, swizzle_128x4(scales) if is_sf_swizzled_layout else scales
