"""Torch reference for quant.* (contracts in anyaccel.ops.quant): dequantize to float32, compute, round once.

Scale layouts are read from the scale shapes (see `expand_scale`), so one function serves every granularity.
"""

from __future__ import annotations

import torch

from anyaccel.ops.quant import BLOCK
from anyaccel.schemes.packing import awq_unpack, gptq_unpack, unpack_rows


def fp8_max(fp8_dtype: torch.dtype) -> float:
    """Largest finite value: 448 for e4m3fn, 240 for e4m3fnuz."""
    return float(torch.finfo(fp8_dtype).max)


def saturate_to_fp8(x: torch.Tensor, fp8_dtype: torch.dtype) -> torch.Tensor:
    """Round float32 x to fp8 (nearest even), clamping first: torch turns out-of-range values into NaN."""
    top = fp8_max(fp8_dtype)
    return x.clamp(-top, top).to(fp8_dtype)


def expand_scale(scale: torch.Tensor, rows: int, cols: int, name: str = "scale") -> torch.Tensor:
    """A scale tensor broadcast to the [rows, cols] values it multiplies. Per dim, a scale size equal to the
    value size means one scale per row/column, size 1 means one for all, ceil(size/128) means 128-blocks.
    A 1-D scale of one element is a per-tensor scale. Any other shape raises ValueError naming `name` (it is
    never read as blocks of another width)."""
    s = scale.float().reshape(1, 1) if scale.numel() == 1 else scale.float()
    if s.dim() != 2 or any(
        got not in (1, size, -(-size // BLOCK)) for got, size in zip(s.shape, (rows, cols), strict=True)
    ):
        raise ValueError(
            f"{name} of shape {list(scale.shape)} cannot scale [{rows}, {cols}] values: each of its 2 dims "
            f"must be 1, the values' size or that size in {BLOCK}-blocks"
        )
    for dim, size in ((0, rows), (1, cols)):
        if s.shape[dim] not in (1, size):
            s = s.repeat_interleave(BLOCK, dim=dim).narrow(dim, 0, size)
    return s.expand(rows, cols)


def _group_amax(x: torch.Tensor, granularity: str) -> torch.Tensor:
    m, k = x.shape
    if granularity == "tensor":
        return x.abs().amax().reshape(1)
    if granularity == "token":
        return x.abs().amax(dim=1, keepdim=True)
    padded = torch.nn.functional.pad(x, (0, -k % BLOCK))  # zeros do not change a group's amax
    return padded.abs().reshape(m, -1, BLOCK).amax(dim=2)


def quantize_fp8(
    x: torch.Tensor, fp8_dtype: torch.dtype, granularity: str, scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x.float()
    if scale is None:
        scale = _group_amax(xf, granularity).clamp_min(1e-12) / fp8_max(fp8_dtype)
    elif granularity != "tensor":
        raise ValueError(f"quant.quantize_fp8: a static scale is per tensor, got granularity {granularity!r}")
    q = saturate_to_fp8(xf / expand_scale(scale, *x.shape), fp8_dtype)
    return q, scale.float()


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x.float()
    scale = xf.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.round(xf / scale).clamp(-127, 127).to(torch.int8), scale


def _finish(acc: torch.Tensor, bias: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
    return (acc if bias is None else acc + bias.float()).to(out_dtype)


def fp8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    (m, k), n = a.shape, b.shape[0]
    a_real = a.float() * expand_scale(a_scale, m, k, "quant.fp8_gemm: a_scale")
    b_real = b.float() * expand_scale(b_scale, n, k, "quant.fp8_gemm: b_scale")
    return _finish(a_real @ b_real.T, bias, out_dtype)


def int8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    # |products| <= 127^2, so float64 holds every int32-range sum exactly: this IS the int32 accumulation
    acc = (a.double() @ b.double().T).float()
    return _finish(acc * a_scale.float() * b_scale.float().T, bias, out_dtype)


def dequantize_w4(
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None,
    g_idx: torch.Tensor | None,
    k: int,
) -> torch.Tensor:
    """GPTQ, AWQ or affine tensors -> float32 weight [N, K]. The format is told by the arguments: affine
    offsets are floating point, AWQ's qweight has K rows, GPTQ's K/8."""
    if qzeros is not None and qzeros.is_floating_point():  # affine: q * scale + offset per group
        q = unpack_rows(qweight)
        group = k // scales.shape[1]
        return q.float() * scales.float().repeat_interleave(group, 1) + qzeros.float().repeat_interleave(
            group, 1
        )
    awq = qweight.shape[0] == k
    q, zeros = (awq_unpack if awq else gptq_unpack)(qweight, qzeros)
    group = k // scales.shape[0]
    groups = torch.arange(k, device=q.device) // group if g_idx is None else g_idx.long()
    zero = 8.0 if zeros is None else zeros[groups].T.float()
    return (q.float() - zero) * scales[groups].T.float()


def w4a16_gemm(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    w = dequantize_w4(qweight, scales, qzeros, g_idx, x.shape[1])
    return _finish(x.float() @ w.T, bias, x.dtype)


def w8a16_gemm(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    group = qweight.shape[1] // scales.shape[1]
    w = qweight.float() * scales.float().repeat_interleave(group, 1)
    return _finish(x.float() @ w.T, bias, x.dtype)
