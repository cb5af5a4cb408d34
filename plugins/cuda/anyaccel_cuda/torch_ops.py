"""torch's CUDA-only entry points, as the kernels call them.

Each name is torch's own function (no wrapper, no per-call cost). They exist as one module so that an
emulated cuda platform can replace them: on host tensors these functions either do not exist or run other
code, so ANYACCEL_EMULATE=cuda:<sm> installs anyaccel_cuda/emulators/torch_ops.py in this module's place.
Kernels fetch this module when they are bound (`importlib.import_module`), never at import.
"""

from __future__ import annotations

import torch
from torch.nn.attention.varlen import varlen_attn

# (a [M, K] fp8 row-major, b [K, N] fp8 column-major, scale_a, scale_b, bias=None, scale_result=None,
#  out_dtype=None, use_fast_accum=False) -> [M, N]
scaled_mm = torch._scaled_mm
# (mat_a [sum M_g, K], mat_b [G, K, N], offs=[G] int32 cumulative row ends, bias=None, out_dtype=None)
grouped_mm = torch._grouped_mm
# (a [M, K] int8, b [K, N] int8) -> [M, N] int32
int_mm = torch._int_mm

__all__ = ["grouped_mm", "int_mm", "scaled_mm", "varlen_attn"]
