"""npu_geglu: the GELU-gated linear unit (torch_npu 2.14 _op_plugin_docs.py and meta registration; the
schema of Ascend/op-plugin @ 517f2e7 op_plugin/config/op_plugin_functions.yaml; the computation and the
products in hicann/ops-nn @ 0c8fd4c activation/ge_glu_v2/docs/aclnnGeGluV3.md, which torch_npu calls, per
op_plugin/ops/opapi/GeGluKernelNpuOpApi.cpp).

npu_geglu(self, dim=-1, approximate=1, activate_left=False) -> (out, out_gelu)
    self float32/float16/bfloat16 (no bfloat16 on the Atlas inference series, 310P), 1-8 dims; `dim` in
    [-self.dim(), self.dim() - 1] and of even size. A, B = the first and second halves along `dim`;
    approximate 0: GELU with erf ("none"), 1: its tanh form. activate_left True: out = gelu(A) * B and
    out_gelu = gelu(A); False (the default): out = A * gelu(B) and out_gelu = gelu(B). Both in self's dtype,
    each computed in float32 and rounded once.
"""

from __future__ import annotations

import torch

from ._checks import FLOATS, dtype_of_soc, require

APPROXIMATE = {0: "none", 1: "tanh"}


def npu_geglu(
    self: torch.Tensor, dim: int = -1, approximate: int = 1, activate_left: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    fn = "npu_geglu"
    require(self.dtype in FLOATS, fn, f"dtype {self.dtype}: float32, float16 or bfloat16")
    dtype_of_soc(fn, self.dtype)
    require(1 <= self.dim() <= 8, fn, f"self must have 1-8 dims, got {self.dim()}")
    require(-self.dim() <= dim < self.dim(), fn, f"dim {dim} out of range for {self.dim()} dims")
    require(self.shape[dim] % 2 == 0, fn, f"dim {dim} of size {self.shape[dim]} cannot be halved")
    require(approximate in APPROXIMATE, fn, f"approximate {approximate}: 0 (none) or 1 (tanh)")
    a, b = self.float().chunk(2, dim=dim)
    gated, other = (a, b) if activate_left else (b, a)
    gelu = torch.nn.functional.gelu(gated, approximate=APPROXIMATE[approximate])
    return (gelu * other).to(self.dtype), gelu.to(self.dtype)
