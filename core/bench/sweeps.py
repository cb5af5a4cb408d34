"""What `anyaccel bench` measures: per op, a small sweep of model-like shapes (cheap enough for a CPU), and
for ops without a sweep the op's own single-process conformance cases. Inputs are built on the CPU from a
seed and moved to the device once, before timing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from anyaccel.conformance.case import Inputs, generator, randn
from anyaccel.conformance.cases import cases_for
from anyaccel.conformance.cases.rope import cos_sin_cache
from anyaccel.ops.activation import ActivationSpec
from anyaccel.ops.norm import NormSpec
from anyaccel.ops.rope import RopeSpec

TOKENS = (1, 16, 128, 1024)  # decode, small batch, prefill chunk, long prefill
HIDDEN = 4096
INTERMEDIATE = 4096
HEADS = (32, 8, 128)  # Hq, Hkv, head_dim (Llama-3-8B)
MAX_CASES = 4  # per op, when its conformance cases stand in for a sweep


@dataclass(frozen=True)
class Point:
    """One benchmarked shape. flops: (args, outputs) -> floating-point operations, for compute-bound ops;
    memory-bound ops report effective bandwidth only."""

    op: str
    label: str
    spec: Any
    make: Callable[[int], Inputs]
    flops: Callable[[tuple[Any, ...], dict[str, Any]], float] | None = None


def _norm(op: str, dtype: torch.dtype) -> list[Point]:
    def point(t: int) -> Point:
        def make(seed: int) -> Inputs:
            g = generator(seed)
            x = randn(g, t, HIDDEN, dtype=dtype)
            if op == "norm.rms_norm":
                return (x, randn(g, HIDDEN, dtype=dtype), 1e-6), {}
            return (x, randn(g, t, HIDDEN, dtype=dtype), randn(g, HIDDEN, dtype=dtype), 1e-6), {}

        return Point(op, f"T={t} H={HIDDEN}", NormSpec(dtype, HIDDEN), make)

    return [point(t) for t in TOKENS]


def _activation(op: str, dtype: torch.dtype) -> list[Point]:
    def point(t: int) -> Point:
        def make(seed: int) -> Inputs:
            return (randn(generator(seed), t, 2 * INTERMEDIATE, dtype=dtype),), {}

        return Point(op, f"T={t} I={INTERMEDIATE}", ActivationSpec(dtype, INTERMEDIATE), make)

    return [point(t) for t in TOKENS]


def _rope(dtype: torch.dtype) -> list[Point]:
    hq, hkv, d = HEADS
    cache = cos_sin_cache(8192, d)

    def point(t: int) -> Point:
        def make(seed: int) -> Inputs:
            g = generator(seed)
            qkv = randn(g, t, hq + 2 * hkv, d, dtype=dtype)  # q and k are views of the fused projection
            positions = torch.randint(0, cache.shape[0], (t,), generator=g)
            return (qkv[:, :hq], qkv[:, hq : hq + hkv], positions, cache, True), {}

        return Point(
            "rope.apply", f"T={t} Hq={hq} Hkv={hkv} D={d}", RopeSpec(dtype, d, d, True, hq, hkv), make
        )

    return [point(t) for t in TOKENS]


def _gemm_flops(args: tuple[Any, ...], outputs: dict[str, Any]) -> float:
    """2*M*N*K: the activation is the first argument [M, K], the result [M, N]."""
    return 2.0 * outputs["out"].numel() * args[0].shape[-1]


FLOPS = {"quant.fp8_gemm": _gemm_flops, "quant.int8_gemm": _gemm_flops, "quant.w4a16_gemm": _gemm_flops}
MX_SHAPE = 2880  # N = K of GPT-OSS's projections


def _mx_gemm(dtype: torch.dtype) -> list[Point]:
    """Decode-sized rows against an [N, K] weight in each block-scaled format (random codes and scales)."""
    from anyaccel.conformance.cases.mx import random_operand
    from anyaccel.ops.mx import MXGemmSpec

    def point(m: int, fmt: str) -> Point:
        def make(seed: int) -> Inputs:
            g = generator(seed)
            w = random_operand(g, fmt, MX_SHAPE, MX_SHAPE, MX_SHAPE**-0.5)
            x = randn(g, m, MX_SHAPE, dtype=dtype)
            return (x, w["q"], w["scale"], dtype, None, w["global"]), {}

        spec = MXGemmSpec(dtype, fmt, "none", MX_SHAPE, MX_SHAPE)
        return Point("quant.mx_gemm", f"M={m} N=K={MX_SHAPE} {fmt}", spec, make, _gemm_flops)

    return [point(m, fmt) for fmt in ("mxfp4", "nvfp4", "mxfp8") for m in (1, 8)]


SWEEPS: dict[str, Callable[[torch.dtype], list[Point]]] = {
    "norm.rms_norm": lambda dtype: _norm("norm.rms_norm", dtype),
    "norm.add_rms_norm": lambda dtype: _norm("norm.add_rms_norm", dtype),
    "activation.silu_and_mul": lambda dtype: _activation("activation.silu_and_mul", dtype),
    "activation.gelu_and_mul": lambda dtype: _activation("activation.gelu_and_mul", dtype),
    "rope.apply": _rope,
    "quant.mx_gemm": _mx_gemm,
}


def points(op: str, dtype: torch.dtype) -> list[Point]:
    """The sweep for `op` in `dtype`, else up to MAX_CASES of its single-process small conformance cases."""
    if op in SWEEPS:
        return SWEEPS[op](dtype)
    cases = [c for c in cases_for(op) if c.world_size == 1 and not c.large][:MAX_CASES]
    return [Point(op, c.id, c.spec, c.make, FLOPS.get(op)) for c in cases]
