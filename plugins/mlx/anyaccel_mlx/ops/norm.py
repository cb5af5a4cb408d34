"""norm.rms_norm and norm.add_rms_norm on mx.fast.rms_norm (fp32 accumulation, like the contract)."""

from __future__ import annotations

import mlx.core as mx


def rms_norm(x: mx.array, weight: mx.array, eps: float) -> mx.array:
    return mx.fast.rms_norm(x, weight, eps)


def add_rms_norm(x: mx.array, residual: mx.array, weight: mx.array, eps: float) -> tuple[mx.array, mx.array]:
    """Returns (new x, new residual): residual + x rounded to the dtype, and its normalisation."""
    summed = x + residual
    return mx.fast.rms_norm(summed, weight, eps), summed
