"""Cases for quant.*: every scale granularity, e4m3fn and e4m3fnuz, GPTQ (zeros, symmetric, act-order) and
AWQ packing, group sizes 32/64/128, odd row counts, and large GEMMs.

Tolerances. quantize_*: the scales must match to 1e-6 (one fp32 division), and each quantized value must be
a nearest grid value of x / scale, so ties and reciprocal-multiply kernels pass while truncation fails.
GEMMs see exactly representable fp8/int8/int4 inputs, so only accumulation order and output rounding
differ from the float64 oracle: the dtype table widened 4x for K up to 4096. w4a16 kernels also round each
dequantized weight to fp16/bf16 (2^-11 / 2^-8 relative, averaging out over K), inside the same 4x.
"""

from __future__ import annotations

from typing import Any

import torch

from anyaccel.ops.quant import AFFINE_SCALE_DTYPES, GemmSpec, QuantSpec, W4A16Spec, W8A16Spec

from ..case import Case, Comparison, Tolerance, generator, randn
from ..compare import errors
from ..oracles import quant as oracle
from ..tolerance import for_dtype

FP8 = (torch.float8_e4m3fn, torch.float8_e4m3fnuz)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SCALE_TOL = Tolerance(0.0, 1e-6)
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def name(dtype: torch.dtype) -> str:
    """Short label: float32, bfloat16, e4m3fn, e4m3fnuz."""
    return dtype_name(dtype).replace("float8_", "")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def pack_nibbles(values: torch.Tensor) -> torch.Tensor:
    """[..., 8m] values 0..15 -> [..., m] int32 words, value i of each 8 in bits 4i (two's complement)."""
    v = values.to(torch.int64).reshape(*values.shape[:-1], -1, 8)
    words = torch.stack([v[..., i] << (4 * i) for i in range(8)]).sum(0)
    return (words - (words >> 31) * (1 << 32)).to(torch.int32)


def quantize_tiles(x: torch.Tensor, fp8_dtype: torch.dtype, rows: int, cols: int) -> tuple[torch.Tensor, ...]:
    """Quantize float32 x [R, C] to fp8 with one scale per rows x cols tile -> (q, scale [ceil(R/rows),
    ceil(C/cols)]); the inputs of the fp8 cases."""
    r, c = x.shape
    padded = torch.nn.functional.pad(x, (0, -c % cols, 0, -r % rows))
    tiles = padded.reshape(padded.shape[0] // rows, rows, padded.shape[1] // cols, cols)
    scale = tiles.abs().amax(dim=(1, 3)).clamp_min(1e-12) / torch.finfo(fp8_dtype).max
    full = scale.repeat_interleave(rows, 0)[:r].repeat_interleave(cols, 1)[:, :c]
    top = torch.finfo(fp8_dtype).max
    return (x / full).clamp(-top, top).to(fp8_dtype), scale


def varied(g: torch.Generator, rows: int, cols: int, spread: float = 4.0) -> torch.Tensor:
    """Gaussian values whose magnitude changes by up to 2^spread between rows and 128-column blocks, so a
    kernel that applies the wrong scale to a row or block is caught."""
    x = torch.randn(rows, cols, generator=g)
    row = torch.pow(2.0, (torch.rand(rows, 1, generator=g) * 2 - 1) * spread / 2)
    block = torch.pow(2.0, (torch.rand(1, -(-cols // 128), generator=g) * 2 - 1) * spread / 2)
    return x * row * block.repeat_interleave(128, 1)[:, :cols]


# --- quantize_fp8 / quantize_int8 -------------------------------------------------------------------------


def _quantized_compare(fp8_dtype: torch.dtype | None):
    """Compare (q, scale) with the oracle's (exact x / scale, scale): q must be a nearest grid value."""

    def compare(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Comparison]:
        q, exact = got["out0"], want["out0"]
        want_dtype = fp8_dtype or torch.int8
        step = 1.0 if fp8_dtype is None else oracle.e4m3_step(exact, fp8_dtype)
        shape_ok = q.dtype == want_dtype and tuple(q.shape) == tuple(exact.shape)
        q_ok = shape_ok and oracle.is_nearest(q.cpu(), exact, step)
        worst = float((q.cpu().double() - exact).abs().max()) if shape_ok and q.numel() else float("inf")
        return {"out0": Comparison(q_ok, worst, 0.0), "out1": errors(got["out1"], want["out1"], SCALE_TOL)}

    return compare


QUANT_SHAPES = ((1, 128), (37, 1000), (16, 4096))


def _quantize_fp8_cases() -> list[Case]:
    cases = []
    for dtype in DTYPES:
        for fp8 in FP8:
            for gran in ("tensor", "token", "block"):
                for m, k in QUANT_SHAPES:

                    def make(seed: int, m=m, k=k, d=dtype, f=fp8, gr=gran):
                        return (varied(generator(seed), m, k).to(d), f, gr), {}

                    cases.append(
                        Case(
                            "quant.quantize_fp8",
                            f"M={m} K={k} {gran} {name(dtype)}->{name(fp8)}",
                            QuantSpec(dtype, dtype_name(fp8), gran),
                            make,
                            oracle.quantize_fp8,
                            {},
                            compare=_quantized_compare(fp8),
                        )
                    )
            # static per-tensor scale at half the dynamic one: the largest values saturate
            for fp8 in FP8:

                def make_static(seed: int, d=dtype, f=fp8):
                    x = varied(generator(seed), 33, 520).to(d)
                    scale = (x.float().abs().amax() / torch.finfo(f).max / 2).reshape(1)
                    return (x, f, "tensor", scale), {}

                label = f"M=33 K=520 static saturating {name(dtype)}->{name(fp8)}"
                cases.append(
                    Case(
                        "quant.quantize_fp8",
                        label,
                        QuantSpec(dtype, dtype_name(fp8), "tensor"),
                        make_static,
                        oracle.quantize_fp8,
                        {},
                        compare=_quantized_compare(fp8),
                    )
                )
    return cases


def _quantize_int8_cases() -> list[Case]:
    cases = []
    for dtype in DTYPES:
        for m, k in QUANT_SHAPES:

            def make(seed: int, m=m, k=k, d=dtype):
                return (varied(generator(seed), m, k).to(d),), {}

            cases.append(
                Case(
                    "quant.quantize_int8",
                    f"M={m} K={k} {name(dtype)}",
                    QuantSpec(dtype),
                    make,
                    oracle.quantize_int8,
                    {},
                    compare=_quantized_compare(None),
                )
            )
    return cases


# --- fp8_gemm / int8_gemm -----------------------------------------------------------------------------------

GEMM_SHAPES = ((1, 128, 128), (37, 300, 200), (16, 256, 1024))
LARGE_GEMM = (32, 2048, 4096)  # K = 4096: the accumulation length of real layers
TILES = {
    "tensor": ((1 << 30, 1 << 30), (1 << 30, 1 << 30)),
    "channel": ((1, 1 << 30), (1, 1 << 30)),
    "block": ((1, 128), (128, 128)),
}  # (a tile, b tile) in (rows, cols); 1 << 30 = the whole dim


def _fp8_gemm_case(
    m: int, n: int, k: int, scales: str, out: torch.dtype, fp8: torch.dtype, bias: bool, large: bool = False
) -> Case:
    def make(seed: int):
        g = generator(seed)
        (ar, ac), (br, bc) = TILES[scales]
        a, a_scale = quantize_tiles(varied(g, m, k), fp8, min(ar, m), min(ac, k))
        b, b_scale = quantize_tiles(varied(g, n, k) / k**0.5, fp8, min(br, n), min(bc, k))
        if scales == "tensor":
            a_scale, b_scale = a_scale.reshape(1), b_scale.reshape(1)
        return (a, b, a_scale, b_scale, out, randn(g, n, dtype=out) if bias else None), {}

    label = f"M={m} N={n} K={k} {scales} {name(fp8)}->{name(out)}" + (" bias" if bias else "")
    return Case(
        "quant.fp8_gemm",
        label,
        GemmSpec(out, scales, dtype_name(fp8), n, k),
        make,
        oracle.fp8_gemm,
        for_dtype(out, 4.0),
        large=large,
    )


def _fp8_gemm_cases() -> list[Case]:
    cases = [
        _fp8_gemm_case(m, n, k, scales, out, fp8, bias=(i % 2 == 1))
        for scales in TILES
        for out in DTYPES
        for fp8 in FP8
        for i, (m, n, k) in enumerate(GEMM_SHAPES)
    ]
    cases += [
        _fp8_gemm_case(*LARGE_GEMM, scales, torch.bfloat16, torch.float8_e4m3fn, bias=True, large=True)
        for scales in ("channel", "block")
    ]
    return cases


def _int8_gemm_case(m: int, n: int, k: int, out: torch.dtype, bias: bool, large: bool = False) -> Case:
    def make(seed: int):
        g = generator(seed)

        def per_row(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scale = x.abs().amax(dim=1, keepdim=True) / 127
            return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale

        a, a_scale = per_row(varied(g, m, k))
        b, b_scale = per_row(varied(g, n, k) / k**0.5)
        return (a, b, a_scale, b_scale, out, randn(g, n, dtype=out) if bias else None), {}

    label = f"M={m} N={n} K={k} ->{name(out)}" + (" bias" if bias else "")
    return Case(
        "quant.int8_gemm",
        label,
        GemmSpec(out, "channel", n=n, k=k),
        make,
        oracle.int8_gemm,
        for_dtype(out, 4.0),
        large=large,
    )


def _int8_gemm_cases() -> list[Case]:
    shapes = ((1, 64, 128), (37, 200, 333), (16, 512, 1024))
    return [
        _int8_gemm_case(m, n, k, out, bias=(i % 2 == 0))
        for out in DTYPES
        for i, (m, n, k) in enumerate(shapes)
    ] + [_int8_gemm_case(*LARGE_GEMM, torch.bfloat16, bias=True, large=True)]


# --- w4a16_gemm ---------------------------------------------------------------------------------------------

W4_VARIANTS = (
    ("gptq", True, False),
    ("gptq", False, False),
    ("gptq", True, True),
    ("awq", True, False),
    ("awq", False, False),
)  # (format, zero points, act-order)
W4_SHAPES = ((1, 64, 256), (37, 136, 384), (16, 256, 512))


def w4_checkpoint(
    g: torch.Generator,
    n: int,
    k: int,
    group: int,
    fmt: str,
    zeros: bool,
    act_order: bool,
    dtype: torch.dtype,
    scales_dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor | None, ...]:
    """Random 4-bit weights packed as a checkpoint: (qweight, scales, qzeros, g_idx); the affine format's
    scales and offsets in scales_dtype (the oracle reads the stored, rounded values)."""
    q = torch.randint(0, 16, (n, k), generator=g)
    z = torch.randint(1, 16, (k // group, n), generator=g)  # GPTQ v1 cannot store a zero point of 0
    scales = ((torch.rand(k // group, n, generator=g) + 0.5) / (4 * k**0.5)).to(dtype)
    g_idx = (torch.randperm(k, generator=g) // group).to(torch.int32) if act_order else None
    if fmt == "affine":  # [N, K/8] words along K; scales and offsets [N, K/G] in scales_dtype
        offsets = -(torch.rand(n, k // group, generator=g) * 15) * scales.T.float()
        stored = (scales.T.to(scales_dtype).contiguous(), offsets.to(scales_dtype).contiguous())
        return pack_nibbles(q), *stored, None
    if fmt == "gptq":
        qweight = pack_nibbles(q).T.contiguous()  # [K/8, N]: input channel 8r + i in bits 4i of row r
        qzeros = pack_nibbles(z - 1) if zeros else None  # v1 stores zero - 1
    else:
        order = torch.tensor(AWQ_ORDER)
        interleave = torch.arange(n).reshape(-1, 8)[:, order].flatten()  # slot i of word c: col 8c+ORDER[i]
        qweight = pack_nibbles(q.T[:, interleave])
        qzeros = pack_nibbles(z[:, interleave]) if zeros else None
    return qweight, scales, qzeros, g_idx


def _w4_case(
    m: int,
    n: int,
    k: int,
    group: int,
    fmt: str,
    zeros: bool,
    act_order: bool,
    dtype: torch.dtype,
    large: bool = False,
    scales_dtype: torch.dtype = torch.float32,
) -> Case:
    def make(seed: int):
        g = generator(seed)
        qweight, scales, qzeros, g_idx = w4_checkpoint(
            g, n, k, group, fmt, zeros, act_order, dtype, scales_dtype
        )
        bias = randn(g, n, dtype=dtype) if m % 2 else None
        return (randn(g, m, k, dtype=dtype), qweight, scales, qzeros, g_idx, bias), {}

    label = (
        f"M={m} N={n} K={k} {fmt} G={group}"
        + (" zeros" if zeros else " sym")
        + (" act-order" if act_order else "")
        + f" {name(dtype)}"
        + ("" if scales_dtype == torch.float32 else f" scales={name(scales_dtype)}")
    )
    return Case(
        "quant.w4a16_gemm",
        label,
        W4A16Spec(dtype, fmt, group, zeros, act_order, n, k, scales_dtype),
        make,
        oracle.w4a16_gemm,
        for_dtype(dtype, 4.0),
        large=large,
    )


def _w4a16_cases() -> list[Case]:
    cases = []
    for dtype in (torch.float16, torch.bfloat16):
        for i, (fmt, zeros, act_order) in enumerate(W4_VARIANTS):
            for j, group in enumerate((32, 64, 128)):
                m, n, k = W4_SHAPES[(i + j) % len(W4_SHAPES)]
                cases.append(_w4_case(m, n, k, group, fmt, zeros, act_order, dtype))
    # the affine format (GGUF Q4_0/Q4_1/Q4_K, MLX, HQQ) also runs with float32 activations; N = 37 and 300
    # are not multiples of 8, which affine rows allow; 1, 8, 11 and 20 rows reach a CPU kernel's one-row,
    # 8-row tile, partial tile and many-row paths. The scales and offsets are also stored in 16 bits, as
    # GGUF Q4_0/Q4_1 (float16, with float32 activations) and MLX (the activations' dtype) keep them
    affine = ((1, 37, 256), (8, 64, 384), (11, 300, 512), (20, 72, 256))
    for i, dtype in enumerate(DTYPES):
        for j, (m, n, k) in enumerate(affine):
            group = (32, 64, 128)[(i + j) % 3]
            cases.append(_w4_case(m, n, k, group, "affine", True, False, dtype))
            for half in AFFINE_SCALE_DTYPES[1:] if dtype == torch.float32 else (dtype,) if j == i else ():
                cases.append(_w4_case(m, n, k, group, "affine", True, False, dtype, scales_dtype=half))
    cases.append(_w4_case(33, 2048, 4096, 128, "gptq", True, True, torch.float16, large=True))
    cases.append(_w4_case(7, 2048, 4096, 32, "affine", True, False, torch.float32, large=True))
    return cases


# --- w8a16_gemm ---------------------------------------------------------------------------------------------


def w8_checkpoint(g: torch.Generator, n: int, k: int, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random int8 group-quantized weights: (qweight [N, K] int8, scales [N, K/G] float32)."""
    q = torch.randint(-128, 128, (n, k), generator=g).to(torch.int8)
    return q, (torch.rand(n, k // group, generator=g) + 0.5) / (64 * k**0.5)


def _w8_case(m: int, n: int, k: int, group: int, dtype: torch.dtype, large: bool = False) -> Case:
    def make(seed: int):
        g = generator(seed)
        q, scales = w8_checkpoint(g, n, k, group)
        bias = randn(g, n, dtype=dtype) if m % 2 else None
        return (randn(g, m, k, dtype=dtype), q, scales, bias), {}

    return Case(
        "quant.w8a16_gemm",
        f"M={m} N={n} K={k} G={group} {name(dtype)}",
        W8A16Spec(dtype, group, n, k),
        make,
        oracle.w8a16_gemm,
        for_dtype(dtype, 4.0),
        large=large,
    )


def _w8a16_cases() -> list[Case]:
    shapes = ((1, 36, 256), (3, 64, 512), (17, 200, 384))
    cases = [
        _w8_case(m, n, k, (16, 32, 64, 128)[(i + j) % 4], dtype)
        for i, dtype in enumerate(DTYPES)
        for j, (m, n, k) in enumerate(shapes)
    ]
    return cases + [_w8_case(4, 4096, 2048, 32, torch.float32, large=True)]


CASES = {
    "quant.quantize_fp8": _quantize_fp8_cases,
    "quant.quantize_int8": _quantize_int8_cases,
    "quant.fp8_gemm": _fp8_gemm_cases,
    "quant.int8_gemm": _int8_gemm_cases,
    "quant.w4a16_gemm": _w4a16_cases,
    "quant.w8a16_gemm": _w8a16_cases,
}
