"""Cases for activation.silu_and_mul and activation.gelu_and_mul."""

from __future__ import annotations

import torch

from anyaccel.ops.activation import ActivationSpec

from ..case import Case, generator, randn
from ..oracles import elementwise as oracle
from ..tolerance import for_dtype

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SHAPES = ((1, 128), (5, 11008), (37, 1000), (64, 768), (3, 2, 96))  # leading dims may be >1-D


def _cases(op: str, fn, approximations: tuple[str | None, ...]) -> list[Case]:
    cases = []
    for dtype in DTYPES:
        for *lead, inter in SHAPES:
            for approx in approximations:

                def make(seed: int, lead=tuple(lead), i=inter, d=dtype, a=approx):
                    x = randn(generator(seed), *lead, 2 * i, dtype=d, scale=2.0)
                    return ((x,) if a is None else (x, a)), {}

                label = f"{'x'.join(map(str, lead))}x2*{inter} {str(dtype)[6:]}" + (
                    f" {approx}" if approx else ""
                )
                cases.append(Case(op, label, ActivationSpec(dtype, inter), make, fn, for_dtype(dtype, 2.0)))
    return cases


CASES = {
    "activation.silu_and_mul": lambda: _cases("activation.silu_and_mul", oracle.silu_and_mul, (None,)),
    "activation.gelu_and_mul": lambda: _cases(
        "activation.gelu_and_mul", oracle.gelu_and_mul, ("none", "tanh")
    ),
}
