"""Oracles for quant.quantize_mx and quant.mx_gemm, in float64 from the format definitions (OCP MX v1.0,
NVIDIA's NVFP4): e2m1 and e4m3 decoded from their bit fields, e8m0 as a power of two, one element at a
time; written apart from anyaccel.ops.microscaling so that a shared mistake cannot hide."""

from __future__ import annotations

import math

import torch

from .quant import _gemm

BLOCKS = {"mxfp8": 32, "mxfp4": 32, "nvfp4": 16}
ELEM_MAX = {"mxfp8": 448.0, "mxfp4": 6.0, "nvfp4": 6.0}
ELEM_EMAX = {"mxfp8": 8, "mxfp4": 2, "nvfp4": 2}


def e2m1_value(code: int) -> float:
    """Bit 3 the sign, bits 2..1 the exponent (bias 1), bit 0 the mantissa; exponent 0 is subnormal."""
    sign = -1.0 if code & 8 else 1.0
    exp, man = (code >> 1) & 3, code & 1
    mag = man * 0.5 if exp == 0 else 2.0 ** (exp - 1) * (1 + man / 2)
    return sign * mag


def e4m3_value(byte: int) -> float:
    """float8_e4m3fn from its bits: sign, 4 exponent bits (bias 7), 3 mantissa bits; S.1111.111 is NaN."""
    sign = -1.0 if byte & 0x80 else 1.0
    exp, man = (byte >> 3) & 0xF, byte & 7
    if exp == 0xF and man == 7:
        return math.nan
    return sign * (man / 8 * 2.0**-6 if exp == 0 else 2.0 ** (exp - 7) * (1 + man / 8))


def e8m0_value(byte: int) -> float:
    return math.nan if byte == 255 else 2.0 ** (byte - 127)


def e4m3_round(v: float) -> float:
    """Round a non-negative float to e4m3fn: nearest, ties to even, saturating at 448."""
    v = min(v, 448.0)
    if v == 0:
        return 0.0
    exp = max(math.floor(math.log2(v)), -6)
    step = 2.0 ** (exp - 3)
    return round(v / step) * step  # Python's round() is half to even


def decode_elements(fmt: str, q: torch.Tensor) -> torch.Tensor:
    """Element tensor -> float64 [rows, K]."""
    if fmt == "mxfp8":
        bits = q.view(torch.uint8).tolist()
        return torch.tensor([[e4m3_value(b) for b in row] for row in bits], dtype=torch.float64)
    rows = []
    for row in q.tolist():
        values = []
        for byte in row:
            values += [e2m1_value(byte & 0xF), e2m1_value(byte >> 4)]  # element 2i in the low nibble
        rows.append(values)
    return torch.tensor(rows, dtype=torch.float64)


def decode_scales(fmt: str, scales: torch.Tensor) -> torch.Tensor:
    bits = scales.view(torch.uint8).tolist()
    value = e4m3_value if fmt == "nvfp4" else e8m0_value
    return torch.tensor([[value(b) for b in row] for row in bits], dtype=torch.float64)


def dequantize(fmt: str, q: torch.Tensor, scales: torch.Tensor, glob: torch.Tensor | None) -> torch.Tensor:
    values = decode_elements(fmt, q)
    s = decode_scales(fmt, scales)
    block = BLOCKS[fmt]
    for c in range(values.shape[1]):
        values[:, c] *= s[:, c // block]
    return values * float(glob.double()) if glob is not None else values


def format_of(q: torch.Tensor, scales: torch.Tensor) -> str:
    if scales.dtype == torch.float8_e4m3fn:
        return "nvfp4"
    return "mxfp8" if q.dtype == torch.float8_e4m3fn else "mxfp4"


def quantize_mx(
    x: torch.Tensor, fmt: str, global_scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x / its block scale, clamped to the element range but not rounded; the block scales as float64
    values): the case's compare requires equal scales and nearest elements."""
    xd = x.double()
    m, k = xd.shape
    block, top = BLOCKS[fmt], ELEM_MAX[fmt]
    glob = None if global_scale is None else float(global_scale.double())
    scaled = torch.empty_like(xd)
    scales = torch.empty(m, k // block, dtype=torch.float64)
    for r in range(m):
        for b in range(k // block):
            chunk = xd[r, b * block : (b + 1) * block]
            amax = float(chunk.abs().max())
            if glob is None:  # OCP: 2^(floor(log2(amax)) - emax_elem), in e8m0's range
                exp = -127 if amax == 0 else math.floor(math.log2(amax)) - ELEM_EMAX[fmt]
                s = 2.0 ** min(max(exp, -127), 127)
                full = s
            else:
                s = e4m3_round(amax / (6.0 * glob))
                full = s * glob
            scales[r, b] = s
            part = chunk / full if full > 0 else torch.zeros_like(chunk)
            scaled[r, b * block : (b + 1) * block] = part.clamp(-top, top)
    return scaled, scales


def mx_gemm(
    a: torch.Tensor,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    out_dtype: torch.dtype,
    a_scale: torch.Tensor | None = None,
    w_global_scale: torch.Tensor | None = None,
    a_global_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    w_real = dequantize(format_of(w, w_scale), w, w_scale, w_global_scale)
    a_real = a.double() if a_scale is None else dequantize(format_of(a, a_scale), a, a_scale, a_global_scale)
    return _gemm(a_real, w_real, bias)


def is_nearest(fmt: str, q: torch.Tensor, exact: torch.Tensor, slack: float = 1e-3) -> bool:
    """Whether every decoded element q is a nearest grid value of `exact` (either neighbour of a tie, and
    `slack` of the local spacing for kernels that multiply by a reciprocal scale)."""
    if fmt == "mxfp8":
        nearest = exact.to(torch.float8_e4m3fn).double()
        step = torch.pow(2.0, torch.floor(torch.log2(exact.abs().clamp_min(2.0**-6))) - 3)
    else:
        grid = torch.tensor([e2m1_value(c) for c in range(16)], dtype=torch.float64)
        nearest = grid[(exact[..., None] - grid).abs().argmin(dim=-1)]
        step = torch.full_like(exact, 0.5)
    return bool(((q - exact).abs() <= (exact - nearest).abs() + slack * step).all())
