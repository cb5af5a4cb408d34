"""aiter.dtypes (aiter/utility/dtypes.py): short names, and `fp8` resolved for the device's gfx."""

from __future__ import annotations

from typing import Any

import torch

from ._device import fp8 as _fp8

fp16, bf16, fp32 = torch.float16, torch.bfloat16, torch.float32
i8, u8, i32, i64 = torch.int8, torch.uint8, torch.int32, torch.int64


def __getattr__(name: str) -> Any:
    if name == "fp8":  # resolved at import by AITER; here on first access, once the platform is known
        return _fp8()
    raise AttributeError(name)
