"""Emulator of deep_gemm.fp8_gemm_nt (deepseek-ai/DeepGEMM 54e2261, csrc/apis/gemm.hpp fp8_fp4_gemm_nt).

fp8_gemm_nt((a, sfa), (b, sfb), d, c=None, recipe=None, ...): d = a @ b.T (+ c), with a [m, k] and b [n, k]
float8_e4m3fn, K-major; d [m, n] bf16 or fp32, N-major; c (fp32, like d) is accumulated. Scale factors
(default recipe (1, 128, 128)): sfa [m, ceil(k/128)] per 1x128, sfb [ceil(n/128), ceil(k/128)] per 128x128,
float32. Arch 9 reads them as floats; arch 10 casts them to UE8M0 (the exponent, rounded up to a power of
two) unless disable_ue8m0_cast; any other arch is "Unsupported architecture or scaling factor types".
"""

from __future__ import annotations

import torch

from . import arch
from .errors import not_emulated

__version__ = "2.x+anyaccel.emulated"


class DGError(RuntimeError):
    """What DG_HOST_ASSERT raises (a RuntimeError from the extension)."""


def _assert(cond: bool, what: str) -> None:
    if not cond:
        raise DGError(f"Assertion error (csrc/apis/gemm.hpp): {what}")


def _ue8m0(sf: torch.Tensor) -> torch.Tensor:
    """A positive float rounded up to a power of two, as the UE8M0 cast keeps only the exponent."""
    return torch.exp2(torch.ceil(torch.log2(sf)))


def fp8_gemm_nt(
    a: tuple[torch.Tensor, torch.Tensor],
    b: tuple[torch.Tensor, torch.Tensor],
    d: torch.Tensor,
    c: torch.Tensor | None = None,
    recipe: tuple[int, int, int] | None = None,
    recipe_a: tuple[int, int] | None = None,
    recipe_b: tuple[int, int] | None = None,
    compiled_dims: str = "nk",
    disable_ue8m0_cast: bool = False,
) -> None:
    not_emulated("fp8_gemm_nt", recipe_a=(recipe_a, None), recipe_b=(recipe_b, None))
    (qa, sfa), (qb, sfb) = a, b
    _assert(recipe in (None, (1, 128, 128)), "recipe (1, 128, 128)")
    _assert(
        qa.dtype == torch.float8_e4m3fn and qb.dtype == torch.float8_e4m3fn,
        "ab.scalar_type() == kFloat8_e4m3fn",
    )
    _assert(qa.dim() == 2 and qb.dim() == 2 and qa.stride(-1) == 1 and qb.stride(-1) == 1, "K-major a and b")
    m, k = qa.shape
    n, k_ = qb.shape
    _assert(d.dim() == 2 and d.stride(-1) == 1, "d must be N-major")
    _assert(d.shape == (m, n) and k == k_, "m == m_ and n == n_ and k == k_")
    _assert(d.dtype in (torch.bfloat16, torch.float32), "d.scalar_type() == kBFloat16 or kFloat")
    if c is not None:
        _assert(c.shape == d.shape and c.dtype == d.dtype == torch.float32, "c like d, float32")
    kb, nb = -(-k // 128), -(-n // 128)
    _assert(sfa.shape == (m, kb) and sfb.shape == (nb, kb), "scale factors [m, k/128] and [n/128, k/128]")
    _assert(sfa.dtype == torch.float32 and sfb.dtype == torch.float32, "float32 scale factors")
    major = arch.major()
    if major == 10 and not disable_ue8m0_cast:
        sfa, sfb = _ue8m0(sfa), _ue8m0(sfb)
    elif major != 9:  # arch 10 with float scales, or another arch
        raise DGError("Unsupported architecture or scaling factor types")
    af = qa.float() * sfa.repeat_interleave(128, dim=1)[:, :k]
    bf = qb.float() * sfb.repeat_interleave(128, dim=0)[:n].repeat_interleave(128, dim=1)[:, :k]
    result = af @ bf.T
    if c is not None:
        result = result + c
    d.copy_(result)
