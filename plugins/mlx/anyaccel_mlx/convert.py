"""Crossing between torch tensors and MLX arrays: the only place the two meet.

- MLX -> torch: `torch.from_dlpack` on the evaluated array. Zero-copy: the tensor views MLX's buffer (any
  strides MLX chose) and keeps it alive. bfloat16 crosses natively: DLPack has a bf16 type, so no detour
  through NumPy (which has none) is needed.
- torch -> MLX: `mx.from_dlpack`, which COPIES (MLX's CPU build refuses to import CPU memory without a copy,
  "Cannot import a CPU array without a copy"), also natively for bf16. Tensors on another torch device (mps)
  are brought to the host first. Every copy is therefore one explicit call here.
- float8: MLX has no fp8 dtype; e4m3 bytes live in uint8 arrays (`mx.from_fp8` / `mx.to_fp8`), so fp8
  tensors cross as their uint8 bit pattern.
- Weights and per-layer constants cross once: `resident` keeps their MLX copy for as long as the tensor lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import torch

FP8_E4M3 = torch.float8_e4m3fn

TO_MX_DTYPE: dict[torch.dtype, mx.Dtype] = {
    torch.float32: mx.float32,
    torch.float16: mx.float16,
    torch.bfloat16: mx.bfloat16,
    torch.int32: mx.int32,
    torch.int64: mx.int64,
    torch.uint8: mx.uint8,
    torch.bool: mx.bool_,
}


def to_mx(t: torch.Tensor) -> mx.array:
    """A copy of `t` as an MLX array, same shape and dtype (fp8 e4m3fn -> its uint8 bits)."""
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype == FP8_E4M3:
        t = t.view(torch.uint8)
    if t.dtype not in TO_MX_DTYPE:
        raise TypeError(
            f"anyaccel-mlx: no MLX dtype for torch {t.dtype}; supported: "
            f"{', '.join(str(d).removeprefix('torch.') for d in TO_MX_DTYPE)}"
        )
    return mx.from_dlpack(t.detach())


def maybe_mx(t: torch.Tensor | None) -> mx.array | None:
    return None if t is None else to_mx(t)


def to_torch(a: mx.array, device: torch.device | str = "cpu") -> torch.Tensor:
    """A torch view of the MLX array (zero-copy on the CPU; moved once to `device` otherwise)."""
    mx.eval(a)
    t = torch.from_dlpack(a)
    return t if t.device == torch.device(device) else t.to(device)


def mx_dtype(dtype: torch.dtype) -> mx.Dtype:
    return TO_MX_DTYPE[dtype]


_RESIDENT: dict[tuple[int, str], tuple[int, Any]] = {}


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference-mode tensors keep no version counter; they are not updated in place
        return 0


def resident(t: torch.Tensor, key: str = "array", prepare: Callable[[torch.Tensor], Any] = to_mx) -> Any:
    """prepare(t), computed once per tensor and kept while the tensor lives: weights and per-layer
    constants (sinks, fp8 scales) cross into MLX once, not on every call. An in-place update of `t` (its
    version counter moves) recomputes it. `key` tells apart several preparations of one tensor."""
    slot = (id(t), key)
    hit = _RESIDENT.get(slot)
    if hit is not None and hit[0] == _version(t):
        return hit[1]
    if hit is None:
        weakref.finalize(t, _RESIDENT.pop, slot, None)
    value = prepare(t)
    _RESIDENT[slot] = (_version(t), value)
    return value


def maybe_resident(t: torch.Tensor | None) -> mx.array | None:
    return None if t is None else resident(t)
