"""What AITER reads from the device at import or call time (get_gfx, aiter.dtypes.fp8), taken from the
emulated platform."""

from __future__ import annotations

import torch

FP8_BY_GFX = {"gfx942": torch.float8_e4m3fnuz, "gfx950": torch.float8_e4m3fn}


def gfx() -> str:
    from anyaccel import context

    return context.get().platform.capability.name


def fp8() -> torch.dtype:
    """aiter/utility/dtypes.py get_dtype_fp8: the gfx's fp8, uint8 where AITER has none."""
    return FP8_BY_GFX.get(gfx(), torch.uint8)


def check(ok: bool, message: str) -> None:
    """AITER_CHECK in the C++ extensions surfaces as a RuntimeError."""
    if not ok:
        raise RuntimeError(message)
