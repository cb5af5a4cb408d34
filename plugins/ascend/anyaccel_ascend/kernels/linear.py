"""linear.gemm on weights cast once to FRACTAL_NZ (torch_npu.npu_format_cast(w, 29) in `prepare`), the
tiled format the NPU's matrix unit reads without a per-call conversion, as vllm-ascend prepares its dense
weights; each call is torch's own linear, which torch_npu dispatches to the NPU matmul on either format.
"""

from __future__ import annotations

import torch
import torch_npu

FRACTAL_NZ = 29  # ACL format id (torch_npu docs: npu_format_cast(x, 29) -> get_npu_format 29)


def prepare(spec, weights: dict) -> dict:
    return weights | {"weight": torch_npu.npu_format_cast(weights["weight"].contiguous(), FRACTAL_NZ)}


def gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return torch.nn.functional.linear(x, weight, bias)
