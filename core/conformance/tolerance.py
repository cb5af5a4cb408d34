"""Tolerances per compute dtype, and why.

Kernels accumulate in fp32 but round inputs and outputs to the compute dtype; the oracle computes in
float64 from the same (already rounded) inputs. So the error budget is dominated by rounding the result
(and, in multi-stage ops, intermediates) to the compute dtype:
- float32: 24-bit mantissa (eps 1.2e-7); reductions over a few thousand terms in a different order than
  the oracle's keep ~1e-6 relative error, so atol = rtol = 1e-5 leaves a 10x margin.
- float16: eps 9.8e-4; one rounding of the output is at most 4.9e-4 relative, intermediates rounded once
  more (e.g. attention probabilities feeding P@V in fp16) double it: 2e-3 / 2e-3.
- bfloat16: eps 7.8e-3; output rounding 3.9e-3 relative, plus one intermediate rounding: 1.6e-2 / 1.6e-2.
- fp8 (e4m3) inputs: the oracle sees the same fp8 values, so only accumulation and output rounding differ;
  ops that quantize on the fly (dynamic activation quantization) use the 2^-3 relative step of e4m3
  scaled by the dot-product length (set per op in its cases).
"""

from __future__ import annotations

import torch

from .case import Tolerance

BY_DTYPE: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(1e-10, 1e-10),
    torch.float32: Tolerance(1e-5, 1e-5),
    torch.float16: Tolerance(2e-3, 2e-3),
    torch.bfloat16: Tolerance(1.6e-2, 1.6e-2),
}


def for_dtype(dtype: torch.dtype, scale: float = 1.0) -> dict[str, Tolerance]:
    """The table entry for `dtype`, widened by `scale` for ops with several rounded stages."""
    t = BY_DTYPE[dtype]
    return {"*": Tolerance(t.atol * scale, t.rtol * scale)}
