"""oneDNN's pre-packed linear, as torch's CPU build exposes it (the ops torch.compile's CPU backend uses when
it freezes weights).

A weight reordered once into oneDNN's blocked layout is read at close to memory bandwidth by a matmul with
few rows, where a plain-layout GEMM re-packs the whole weight on every call (on a 2-core AVX2 machine, a
[8192, 512] fp32 weight times 8 rows: 1.1 ms packed against 2.6 ms through MKL's sgemm).
"""

from __future__ import annotations

import torch


def onednn_missing() -> str | None:
    """None when this torch build can pack and run oneDNN linear weights, else why not."""
    if not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN (torch.backends.mkldnn.is_available() is False)"
    if not hasattr(torch.ops.mkldnn, "_reorder_linear_weight") or not hasattr(
        torch.ops.mkldnn, "_linear_pointwise"
    ):
        return "this torch build lacks torch.ops.mkldnn._reorder_linear_weight / _linear_pointwise"
    return None


_MISSING = onednn_missing()  # read once: many_rows runs per call


def pack(weight: torch.Tensor) -> torch.Tensor:
    """[N, K] float32 -> the same matrix as an opaque oneDNN tensor (shape [N, K], layout torch._mkldnn)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous())


def linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, K] @ packed.T (+ bias [N]) -> [M, N] (packed from pack(), or a plain contiguous [N, K])."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def many_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, K] @ weight.T (+ bias) for the many-row (prefill) GEMMs of the C kernels, float32, on a plain
    [N, K] weight: oneDNN's matmul where this torch has it (it takes the plain layout too, reordering per
    call), else torch's F.linear. On 2 Zen 4 cores oneDNN runs these 1.7-2.6x faster than F.linear's MKL
    sgemm (16 to 512 rows of SmolLM2's and Llama-like shapes); both are float32 GEMMs, differing only in
    summation order."""
    if _MISSING is None and x.is_contiguous() and weight.is_contiguous():
        return linear(x, weight, None if bias is None else bias.contiguous())
    return torch.nn.functional.linear(x, weight, bias)
