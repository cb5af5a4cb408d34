"""Cases for quant.quantize_mx and quant.mx_gemm (merged into the quant family's CASES).

quantize_mx: every format from float32, float16 and bfloat16; one row and odd row counts, K a multiple of
the block only; block magnitudes spread over 2^12 and some all-zero blocks; nvfp4 with its usual global
(amax / (6 * 448)) and with a quarter of it, so block scales and elements saturate. The scales must equal
the oracle's exactly (they are defined exactly) and each element must be a nearest grid value of
x / scale, which admits either neighbour of a tie and reciprocal-multiplying kernels, and fails truncation,
a swapped nibble order or a wrong scale rule.

mx_gemm: weights (and quantized activations) are random codes and random scales, built here bit by bit,
not by any quantizer: every e2m1 code, e4m3 value and a spread of e8m0 exponents occurs. Inputs are
exactly representable, so only accumulation order and output rounding differ from the float64 oracle:
the dtype table widened 4x, as for the other GEMMs. N = 37 and 100 are no multiple of 16; M = 1 and 37.
"""

from __future__ import annotations

from typing import Any

import torch

from anyaccel.ops.mx import GEMM_COMBOS, MXGemmSpec, MXQuantSpec

from ..case import Case, Comparison, Tolerance, generator, randn
from ..compare import errors
from ..oracles import mx as oracle
from ..tolerance import for_dtype
from .quant import DTYPES, name

BLOCKS = oracle.BLOCKS
EXACT = Tolerance(0.0, 0.0)


def block_varied(g: torch.Generator, rows: int, cols: int, block: int) -> torch.Tensor:
    """Gaussian values whose magnitude changes by up to 2^12 from block to block, every 7th block zero."""
    x = torch.randn(rows, cols, generator=g)
    scale = torch.pow(2.0, torch.randint(-6, 7, (rows, cols // block), generator=g).float())
    scale[:, ::7] = 0.0 if cols // block > 1 else scale[:, ::7]
    return x * scale.repeat_interleave(block, 1)


def random_operand(g: torch.Generator, fmt: str, rows: int, k: int, magnitude: float) -> dict[str, Any]:
    """Random elements and scales of `fmt` whose real values are ~ magnitude: {q, scale, global}."""
    block = BLOCKS[fmt]
    if fmt == "mxfp8":
        bits = torch.randint(0, 256, (rows, k), generator=g, dtype=torch.uint8)
        bits[(bits & 0x7F) == 0x7F] = 0x3F  # no NaN patterns: 0x3f is 1.875
        q = bits.view(torch.float8_e4m3fn)
        typical = 64.0  # |e4m3| values are spread up to 448
    else:
        q = torch.randint(0, 256, (rows, k // 2), generator=g, dtype=torch.uint8)
        typical = 2.0
    if fmt == "nvfp4":
        scale = (torch.rand(rows, k // block, generator=g) * 200 + 8).to(torch.float8_e4m3fn)
        glob = torch.tensor([magnitude / typical / 100.0])
        return {"q": q, "scale": scale, "global": glob}
    center = round(torch.log2(torch.tensor(magnitude / typical)).item()) + 127
    scale = torch.randint(center - 3, center + 4, (rows, k // block), generator=g).to(torch.uint8)
    return {"q": q, "scale": scale, "global": None}


# --- quantize_mx -------------------------------------------------------------------------------------


def _quantized_compare(fmt: str):
    def compare(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Comparison]:
        q, scales = got["out0"].cpu(), got["out1"].cpu()
        exact, want_scales = want["out0"], want["out1"]
        block = BLOCKS[fmt]
        q_dtype = torch.float8_e4m3fn if fmt == "mxfp8" else torch.uint8
        s_dtype = torch.float8_e4m3fn if fmt == "nvfp4" else torch.uint8
        cols = exact.shape[1] if fmt == "mxfp8" else exact.shape[1] // 2
        layout = (
            q.dtype == q_dtype
            and scales.dtype == s_dtype
            and tuple(q.shape) == (exact.shape[0], cols)
            and tuple(scales.shape) == (exact.shape[0], exact.shape[1] // block)
        )
        if not layout:
            sample = f"q {q.dtype} {list(q.shape)}, scales {scales.dtype} {list(scales.shape)}"
            return {"layout": Comparison(False, float("inf"), float("inf"), sample)}
        got_scales = oracle.decode_scales(fmt, scales)
        values = oracle.decode_elements(fmt, q)
        ok = oracle.is_nearest(fmt, values, exact)
        worst = float((values - exact).abs().max()) if values.numel() else 0.0
        sample = "" if ok else "an element is not a nearest grid value of x / scale"
        return {"out0": Comparison(ok, worst, 0.0, sample), "out1": errors(got_scales, want_scales, EXACT)}

    return compare


QUANT_SHAPES = ((1, 64), (37, 416), (16, 1024))


def _quantize_case(m: int, k: int, dtype: torch.dtype, fmt: str, global_factor: float = 1.0) -> Case:
    def make(seed: int):
        g = generator(seed)
        x = block_varied(g, m, k, BLOCKS[fmt]).to(dtype)
        if fmt != "nvfp4":
            return (x, fmt), {}
        glob = (x.float().abs().amax().clamp_min(1e-12) / (6 * 448) * global_factor).reshape(1)
        return (x, fmt, glob), {}

    label = f"M={m} K={k} {name(dtype)}->{fmt}" + (" saturating global" if global_factor != 1 else "")
    return Case(
        "quant.quantize_mx",
        label,
        MXQuantSpec(dtype, fmt, k),
        make,
        oracle.quantize_mx,
        {},
        compare=_quantized_compare(fmt),
    )


def quantize_mx_cases() -> list[Case]:
    cases = [
        _quantize_case(m, k, dtype, fmt)
        for fmt in ("mxfp8", "mxfp4", "nvfp4")
        for dtype in DTYPES
        for m, k in QUANT_SHAPES
    ]
    cases += [_quantize_case(9, 48, dtype, "nvfp4", 0.25) for dtype in DTYPES]  # K = 3 nvfp4 blocks
    return cases


# --- mx_gemm -------------------------------------------------------------------------------------------

GEMM_SHAPES = ((1, 37, 64), (37, 100, 416), (16, 256, 1024))
NVFP4_SHAPES = ((1, 37, 48), (37, 100, 400), (16, 256, 1024))


def _gemm_case(m: int, n: int, k: int, act: str, weight: str, dtype: torch.dtype, bias: bool) -> Case:
    def make(seed: int):
        g = generator(seed)
        w = random_operand(g, weight, n, k, magnitude=k**-0.5)
        if act == "none":
            a, a_scale, a_glob = randn(g, m, k, dtype=dtype), None, None
        else:
            operand = random_operand(g, act, m, k, magnitude=1.0)
            a, a_scale, a_glob = operand["q"], operand["scale"], operand["global"]
        b = randn(g, n, dtype=dtype) if bias else None
        return (a, w["q"], w["scale"], dtype, a_scale, w["global"], a_glob, b), {}

    label = f"M={m} N={n} K={k} {act if act != 'none' else name(dtype)} x {weight} ->{name(dtype)}"
    return Case(
        "quant.mx_gemm",
        label + (" bias" if bias else ""),
        MXGemmSpec(dtype, weight, act, n, k, bias),
        make,
        oracle.mx_gemm,
        for_dtype(dtype, 4.0),
    )


def mx_gemm_cases() -> list[Case]:
    cases = []
    for act, weight in GEMM_COMBOS:
        shapes = NVFP4_SHAPES if weight == "nvfp4" else GEMM_SHAPES
        for i, dtype in enumerate(DTYPES):
            m, n, k = shapes[i]
            cases.append(_gemm_case(m, n, k, act, weight, dtype, bias=(i % 2 == 1)))
    return cases


CASES = {"quant.quantize_mx": quantize_mx_cases, "quant.mx_gemm": mx_gemm_cases}
