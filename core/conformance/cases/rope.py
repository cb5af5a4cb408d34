"""Cases for rope.apply: neox and gptj styles, partial rotary, GQA head counts, long positions."""

from __future__ import annotations

import torch

from anyaccel.ops.rope import RopeSpec

from ..case import Case, generator, randn
from ..oracles import elementwise as oracle
from ..tolerance import for_dtype

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# (tokens, Hq, Hkv, head_dim, rotary_dim, max_position)
SHAPES = (
    (1, 4, 4, 64, 64, 16),
    (13, 8, 2, 128, 128, 8192),
    (7, 6, 1, 80, 40, 512),
    (33, 4, 4, 256, 64, 40000),
    (5, 2, 2, 96, 96, 64),
)


def cos_sin_cache(max_position: int, rotary_dim: int, base: float = 10000.0) -> torch.Tensor:
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim))
    freqs = torch.outer(torch.arange(max_position, dtype=torch.float64), inv_freq)
    return torch.cat((freqs.cos(), freqs.sin()), dim=-1).float()


def _cases() -> list[Case]:
    cases = []
    for dtype in DTYPES:
        for t, hq, hkv, d, r, maxpos in SHAPES:
            for neox in (True, False):

                def make(seed: int, t=t, hq=hq, hkv=hkv, d=d, r=r, maxpos=maxpos, dt=dtype, neox=neox):
                    g = generator(seed)
                    qkv = randn(g, t, hq + 2 * hkv, d, dtype=dt)  # q and k are views of a fused projection
                    positions = torch.randint(0, maxpos, (t,), generator=g)
                    return (qkv[:, :hq], qkv[:, hq : hq + hkv], positions, cos_sin_cache(maxpos, r), neox), {}

                style = "neox" if neox else "gptj"
                cases.append(
                    Case(
                        "rope.apply",
                        f"T={t} Hq={hq} Hkv={hkv} D={d} R={r} {style} {str(dtype)[6:]}",
                        RopeSpec(dtype, d, r, neox, hq, hkv),
                        make,
                        oracle.rope_apply,
                        for_dtype(dtype, 2.0),
                    )
                )
    return cases


CASES = {"rope.apply": _cases}
