"""Cases for linear.gemm: decode-sized and prefill-sized M, odd N and K, with and without bias."""

from __future__ import annotations

import torch

from anyaccel.ops.linear import LinearSpec

from ..case import Case, generator, randn
from ..oracles import linear as oracle
from ..tolerance import for_dtype

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SHAPES = ((1, 256, 512), (8, 1000, 384), (37, 96, 1001), (130, 768, 256), (0, 64, 64))  # (M, N, K)


def _cases() -> list[Case]:
    cases = []
    for n_case, (m, n, k) in enumerate(SHAPES):
        for dtype in DTYPES:
            bias = n_case % 2 == 1

            def make(seed: int, m=m, n=n, k=k, d=dtype, b=bias):
                g = generator(seed)
                x = randn(g, m, k, dtype=d)
                weight = randn(g, n, k, dtype=d, scale=k**-0.5)
                return (x, weight, randn(g, n, dtype=d) if b else None), {}

            label = f"M={m} N={n} K={k}{' bias' if bias else ''} {str(dtype)[6:]}"
            spec = LinearSpec(dtype, n, k)
            cases.append(Case("linear.gemm", label, spec, make, oracle.gemm, for_dtype(dtype, 2.0)))
    return cases


CASES = {"linear.gemm": _cases}
