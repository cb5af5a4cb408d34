"""What every Triton launcher shares: interpreter detection, dot precision, grid sizing. Imports no triton."""

from __future__ import annotations

import os

import torch

FP8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e4m3fnuz: 240.0}
FP8_MIN_EXP = {torch.float8_e4m3fn: -6, torch.float8_e4m3fnuz: -7}  # exponent of the smallest normal


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1), as `anyaccel check` does."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def fp32_dot(dtype: torch.dtype) -> bool:
    """Whether tl.dot must take fp32 operands in full IEEE precision: always for fp32 inputs (never TF32,
    the kit's fp32 tolerance is 1e-5), and in the interpreter, whose bf16 dot is wrong."""
    return dtype == torch.float32 or interpreting()


def round_fp8_in_kernel() -> bool:
    """Whether kernels must round to the e4m3 grid themselves before converting: the interpreter's fp32 ->
    fp8 conversion rounds ties away from zero, hardware conversion (and torch) to nearest even."""
    return interpreting()


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    return -(-a // b)
