"""Cases of quant.w4a8_gemm and quant.w8a8_gemm: the weights of the A16 cases, activations quantized by the
contract (anyaccel.ops.a8.int8_blocks) in the oracle too, so a kernel is held to the A16 tolerance.

K = 96 and 352 leave a last single block after pairs of 32 (a kernel that reads blocks two at a time must
handle it); 1, 4, 8, 11 and 20 rows reach the one-row, tile, partial-tile and many-row paths."""

from __future__ import annotations

import torch

from anyaccel.ops.a8 import int8_blocks
from anyaccel.ops.quant import AFFINE_SCALE_DTYPES, W4A16Spec, W8A16Spec

from ..case import Case, generator, randn
from ..oracles import quant as oracle
from ..tolerance import for_dtype
from .quant import DTYPES, name, w4_checkpoint, w8_checkpoint

A8_SHAPES = ((1, 37, 256), (4, 64, 96), (8, 300, 352), (11, 72, 512), (20, 40, 128))
W4_VARIANTS = (("affine", True, False), ("gptq", True, False), ("awq", False, False))


def _w4a8_oracle(x, *weights):
    return oracle.w4a16_gemm(int8_blocks(x), *weights)


def _w8a8_oracle(x, *weights):
    return oracle.w8a16_gemm(int8_blocks(x), *weights)


def _w4a8_case(
    m: int,
    n: int,
    k: int,
    group: int,
    fmt: str,
    zeros: bool,
    dtype: torch.dtype,
    scales_dtype: torch.dtype = torch.float32,
) -> Case:
    def make(seed: int):
        g = generator(seed)
        qweight, scales, qzeros, g_idx = w4_checkpoint(g, n, k, group, fmt, zeros, False, dtype, scales_dtype)
        bias = randn(g, n, dtype=dtype) if m % 2 else None
        return (randn(g, m, k, dtype=dtype), qweight, scales, qzeros, g_idx, bias), {}

    label = f"M={m} N={n} K={k} {fmt} G={group}{' zeros' if zeros else ' sym'} {name(dtype)}"
    if scales_dtype != torch.float32:
        label += f" scales={name(scales_dtype)}"
    spec = W4A16Spec(dtype, fmt, group, zeros, False, n, k, scales_dtype)
    return Case("quant.w4a8_gemm", label, spec, make, _w4a8_oracle, for_dtype(dtype, 4.0))


def _w8a8_case(m: int, n: int, k: int, group: int, dtype: torch.dtype) -> Case:
    def make(seed: int):
        g = generator(seed)
        q, scales = w8_checkpoint(g, n, k, group)
        bias = randn(g, n, dtype=dtype) if m % 2 else None
        return (randn(g, m, k, dtype=dtype), q, scales, bias), {}

    spec = W8A16Spec(dtype, group, n, k)
    label = f"M={m} N={n} K={k} G={group} {name(dtype)}"
    return Case("quant.w8a8_gemm", label, spec, make, _w8a8_oracle, for_dtype(dtype, 4.0))


def _w4a8_cases() -> list[Case]:
    cases = []
    for i, dtype in enumerate(DTYPES):
        for j, (m, n, k) in enumerate(A8_SHAPES):
            fmt, zeros, _ = W4_VARIANTS[(i + j) % len(W4_VARIANTS)]
            group = 32 if k % 64 else (32, 64)[(i + j) % 2]
            cases.append(_w4a8_case(m, n, k, group, "affine", True, dtype))
            if dtype == torch.float32:  # GGUF Q4_0/Q4_1: scales and offsets stored in 16 bits
                half = AFFINE_SCALE_DTYPES[1 + j % 2]
                cases.append(_w4a8_case(m, n, k, group, "affine", True, dtype, half))
            if fmt != "affine" and n % 8 == 0:
                cases.append(_w4a8_case(m, n, k, group, fmt, zeros, dtype))
    return cases


def _w8a8_cases() -> list[Case]:
    return [
        _w8a8_case(m, n, k, (16, 32)[(i + j) % 2], dtype)
        for i, dtype in enumerate(DTYPES)
        for j, (m, n, k) in enumerate(A8_SHAPES)
    ]


CASES = {"quant.w4a8_gemm": _w4a8_cases, "quant.w8a8_gemm": _w8a8_cases}
