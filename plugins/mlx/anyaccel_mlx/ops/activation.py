"""activation.silu_and_mul and activation.gelu_and_mul: fp32 math, one rounding to the input dtype."""

from __future__ import annotations

import math

import mlx.core as mx


def _halves(x: mx.array) -> tuple[mx.array, mx.array]:
    gate, up = mx.split(x.astype(mx.float32), 2, axis=-1)
    return gate, up


def gelu(x: mx.array, approximate: str = "none") -> mx.array:
    """torch.nn.functional.gelu's two forms (erf, or tanh when approximate == "tanh")."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + mx.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1.0 + mx.erf(x * (1.0 / math.sqrt(2.0))))


def silu(x: mx.array) -> mx.array:
    return x * mx.sigmoid(x)


def silu_and_mul(x: mx.array) -> mx.array:
    gate, up = _halves(x)
    return (silu(gate) * up).astype(x.dtype)


def gelu_and_mul(x: mx.array, approximate: str = "none") -> mx.array:
    gate, up = _halves(x)
    return (gelu(gate, approximate) * up).astype(x.dtype)
