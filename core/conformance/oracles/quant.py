"""Oracles for quant.*: float64, scales applied element by element from their definitions, int4 unpacked
nibble by nibble. Also the 4-bit unpackers the MoE oracle uses (written here, not imported from anyaccel)."""

from __future__ import annotations

import torch

BLOCK = 128
FP8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e4m3fnuz: 240.0}
AWQ_SLOT_TO_COLUMN = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble slot i of an AWQ word holds column 8c + this


def nibbles(words: torch.Tensor, slot_to_column: tuple[int, ...] = tuple(range(8))) -> torch.Tensor:
    """int32 words [..., m] -> int64 values [..., 8m]: nibble i (bits 4i..4i+3) of word c goes to
    column 8c + slot_to_column[i]."""
    w = words.to(torch.int64) & 0xFFFFFFFF  # the unsigned bit pattern
    out = torch.zeros(*words.shape[:-1], words.shape[-1] * 8, dtype=torch.int64)
    for i in range(8):
        out[..., slot_to_column[i] :: 8] = (w >> (4 * i)) & 0xF
    return out


def _group_scale(values: list[float], fp8_or_int_max: float) -> float:
    return max(max(abs(v) for v in values), 1e-12) / fp8_or_int_max


def quantize_fp8(
    x: torch.Tensor, fp8_dtype: torch.dtype, granularity: str, scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales only: the quantized values are judged by the case's compare (a nearest fp8 value of x/scale)."""
    xd = x.double()
    m, k = xd.shape
    top = FP8_MAX[fp8_dtype]
    if scale is not None:
        scales = scale.double().reshape(1)
    elif granularity == "tensor":
        scales = torch.tensor([_group_scale(xd.flatten().tolist(), top)], dtype=torch.float64)
    elif granularity == "token":
        scales = torch.tensor([[_group_scale(xd[r].tolist(), top)] for r in range(m)], dtype=torch.float64)
    else:
        scales = torch.tensor(
            [
                [_group_scale(xd[r, c : c + BLOCK].tolist(), top) for c in range(0, k, BLOCK)]
                for r in range(m)
            ],
            dtype=torch.float64,
        )
    per_element = torch.empty_like(xd)
    grid = _scale_grid(scales)
    for r in range(m):
        for c0 in range(0, k, BLOCK):
            s = _scale_at(grid, r, c0, m, k)
            per_element[r, c0 : c0 + BLOCK] = (xd[r, c0 : c0 + BLOCK] / s).clamp(-top, top)
    return per_element, scales


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x / scale unrounded, scale): the case's compare checks q is a nearest integer of the first."""
    xd = x.double()
    scales = torch.tensor([[_group_scale(row.tolist(), 127.0)] for row in xd], dtype=torch.float64)
    return (xd / scales).clamp(-127, 127), scales


def _scale_grid(scale: torch.Tensor) -> list[list[float]]:
    return (scale.double().reshape(1, 1) if scale.numel() == 1 else scale.double()).tolist()


def _scale_at(grid: list[list[float]], r: int, c: int, rows: int, cols: int) -> float:
    """The multiplier of element (r, c): per tensor, per row/column or per 128-block (by grid size)."""
    i = 0 if len(grid) == 1 else (r if len(grid) == rows else r // BLOCK)
    j = 0 if len(grid[0]) == 1 else (c if len(grid[0]) == cols else c // BLOCK)
    return grid[i][j]


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """q [R, C] (fp8 or int8) times its scale in float64, one 128-column block at a time: within such a
    block every scale layout of the contract gives each row a single multiplier."""
    rows, cols = q.shape
    grid = _scale_grid(scale)
    out = q.double()
    for c0 in range(0, cols, BLOCK):
        per_row = torch.tensor([_scale_at(grid, r, c0, rows, cols) for r in range(rows)], dtype=torch.float64)
        out[:, c0 : c0 + BLOCK] *= per_row[:, None]
    return out


def _gemm(a_real: torch.Tensor, b_real: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    out = torch.empty(a_real.shape[0], b_real.shape[0], dtype=torch.float64)
    for m in range(a_real.shape[0]):
        out[m] = b_real @ a_real[m]
    return out if bias is None else out + bias.double()


def fp8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    return _gemm(dequantize(a, a_scale), dequantize(b, b_scale), bias)


def int8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    acc = _gemm(a.double(), b.double(), None)  # exact: integers far below 2^53
    out = acc * a_scale.double() * b_scale.double().T
    return out if bias is None else out + bias.double()


def w4_weight(
    x_cols: int,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None,
    g_idx: torch.Tensor | None,
) -> torch.Tensor:
    """Float64 [N, K] weight of a GPTQ (v1), AWQ or affine weight, from the documented bit layouts."""
    k = x_cols
    if qzeros is not None and qzeros.is_floating_point():  # affine: row n, word c holds channels 8c..8c+7
        q = nibbles(qweight).double()  # [N, K]
        group = k // scales.shape[1]
        return q * scales.double().repeat_interleave(group, 1) + qzeros.double().repeat_interleave(group, 1)
    awq = qweight.shape[0] == k
    if awq:
        q_kn = nibbles(qweight, AWQ_SLOT_TO_COLUMN)  # [K, N]
        zeros = None if qzeros is None else nibbles(qzeros, AWQ_SLOT_TO_COLUMN)
    else:
        q_kn = nibbles(qweight.T).T  # word row r holds input channels 8r..8r+7
        zeros = None if qzeros is None else nibbles(qzeros) + 1  # v1 stores zero - 1
    group_size = k // scales.shape[0]
    w = torch.empty(q_kn.shape[1], k, dtype=torch.float64)
    for col in range(k):
        g = int(g_idx[col]) if g_idx is not None else col // group_size
        zero = zeros[g].double() if zeros is not None else torch.full((w.shape[0],), 8.0, dtype=torch.float64)
        w[:, col] = (q_kn[col].double() - zero) * scales[g].double()
    return w


def w4a16_gemm(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    return _gemm(x.double(), w4_weight(x.shape[1], qweight, scales, qzeros, g_idx), bias)


def w8a16_gemm(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    group = qweight.shape[1] // scales.shape[1]
    w = qweight.double() * scales.double().repeat_interleave(group, 1)
    return _gemm(x.double(), w, bias)


def e4m3_step(value: torch.Tensor, fp8_dtype: torch.dtype) -> torch.Tensor:
    """Spacing of the e4m3 grid at |value| (3 mantissa bits; the subnormal spacing below the normal range)."""
    min_exp = -6 if fp8_dtype == torch.float8_e4m3fn else -7
    exp = torch.floor(torch.log2(value.abs().clamp_min(2.0**min_exp)))
    return torch.pow(2.0, exp - 3)


def is_nearest(q: torch.Tensor, exact: torch.Tensor, step: torch.Tensor | float, slack: float = 1e-3) -> bool:
    """Whether every q is a nearest grid value of `exact` (within `slack` of a step, which admits either
    neighbour of a tie and kernels that multiply by a reciprocal scale)."""
    return bool(((q.double() - exact).abs() <= (0.5 + slack) * step).all())
