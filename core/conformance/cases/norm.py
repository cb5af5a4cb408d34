"""Cases for norm.rms_norm and norm.add_rms_norm: odd hidden sizes, strided rows, every float dtype."""

from __future__ import annotations

import torch

from anyaccel.ops.norm import NormSpec

from ..case import Case, generator, randn
from ..oracles import elementwise as oracle
from ..tolerance import for_dtype

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SHAPES = ((1, 64), (7, 4096), (33, 1000), (128, 5120), (3, 8192))  # (tokens, hidden): odd and large


def _rms_cases() -> list[Case]:
    cases = []
    for dtype in DTYPES:
        for tokens, hidden in SHAPES:

            def make(seed: int, t=tokens, h=hidden, d=dtype):
                g = generator(seed)
                x = randn(g, t, h + 16, dtype=d, scale=3.0)[:, :h]  # strided rows, contiguous last dim
                return (x, randn(g, h, dtype=d), 1e-6), {}

            cases.append(
                Case(
                    "norm.rms_norm",
                    f"T={tokens} H={hidden} {str(dtype)[6:]} strided",
                    NormSpec(dtype, hidden),
                    make,
                    oracle.rms_norm,
                    for_dtype(dtype, 2.0),
                )
            )
    return cases


def _add_rms_cases() -> list[Case]:
    cases = []
    for dtype in DTYPES:
        for tokens, hidden in SHAPES:

            def make(seed: int, t=tokens, h=hidden, d=dtype):
                g = generator(seed)
                return (randn(g, t, h, dtype=d), randn(g, t, h, dtype=d), randn(g, h, dtype=d), 1e-5), {}

            cases.append(
                Case(
                    "norm.add_rms_norm",
                    f"T={tokens} H={hidden} {str(dtype)[6:]}",
                    NormSpec(dtype, hidden),
                    make,
                    oracle.add_rms_norm,
                    for_dtype(dtype, 2.0),
                )
            )
    return cases


CASES = {"norm.rms_norm": _rms_cases, "norm.add_rms_norm": _add_rms_cases}
