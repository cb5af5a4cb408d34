"""fp8 GEMMs (aiter/ops/gemm_op_a8w8.py, ROCm/aiter e404860) in plain torch: fp32 accumulation, one
rounding to the output dtype. Inputs must be AITER's fp8 for the gfx."""

from __future__ import annotations

import torch

from anyaccel_rocm.gates import GEMM_BLOCK

from ._device import fp8


def _operands(XQ, WQ):
    assert XQ.dim() == 2 and WQ.dim() == 2 and XQ.shape[1] == WQ.shape[1], "XQ [M, K], WQ [N, K]"
    assert XQ.dtype == fp8() and WQ.dtype == fp8(), (
        f"XQ/WQ must be {fp8()} on this gfx, got {XQ.dtype}/{WQ.dtype}"
    )


def gemm_a8w8(XQ, WQ, x_scale, w_scale, bias=None, dtype=torch.bfloat16, splitK=None):
    """(XQ * x_scale[M, 1]) @ (WQ * w_scale[N, 1]).T + bias."""
    _operands(XQ, WQ)
    m, n = XQ.shape[0], WQ.shape[0]
    assert dtype in (torch.bfloat16, torch.float16), (
        f"Output {dtype=} is currently not supported in gemm_a8w8"
    )
    assert x_scale.shape == (m, 1) and w_scale.shape == (n, 1), "x_scale [M, 1], w_scale [N, 1] (float32)"
    acc = (XQ.float() * x_scale.float()) @ (WQ.float() * w_scale.float()).T
    if bias is not None:
        acc = acc + bias.float()
    return acc.to(dtype)


def gemm_a8w8_blockscale(XQ, WQ, x_scale, w_scale, dtype=torch.bfloat16, isBpreshuffled=False):
    """x_scale [M, ceil(K/128)] per 1x128 group, w_scale [ceil(N/128), ceil(K/128)] per 128x128 tile."""
    assert dtype in (torch.bfloat16, torch.float16), (
        f"Output {dtype=} is currently not supported in gemm_a8w8"
    )
    if isBpreshuffled:
        raise NotImplementedError("emulated gemm_a8w8_blockscale: isBpreshuffled=False only")
    _operands(XQ, WQ)
    (m, k), n = XQ.shape, WQ.shape[0]
    kb, nb = -(-k // GEMM_BLOCK), -(-n // GEMM_BLOCK)
    assert x_scale.shape == (m, kb) and w_scale.shape == (nb, kb), (
        "x_scale [M, K/128], w_scale [N/128, K/128]"
    )
    assert x_scale.dtype == torch.float32 and w_scale.dtype == torch.float32, "scales must be float32"
    xs = x_scale.repeat_interleave(GEMM_BLOCK, dim=1)[:, :k]
    ws = w_scale.repeat_interleave(GEMM_BLOCK, dim=0).repeat_interleave(GEMM_BLOCK, dim=1)[:n, :k]
    return ((XQ.float() * xs) @ (WQ.float() * ws).T).to(dtype)
