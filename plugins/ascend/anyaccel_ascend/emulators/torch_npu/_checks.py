"""Argument checks shared by the emulated torch_npu functions, and the SoC the emulation stands for.

torch_npu reports rejected arguments as RuntimeError (its op-plugin checks and CANN's aclnn status codes);
the emulator raises `NpuError`, a RuntimeError, with the function's name and the violated rule.
Features the emulator does not implement (quantized attention, pse, left padding...) raise `NotEmulated`
instead of computing something else: an argument the emulator cannot honour never passes silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float16, torch.bfloat16, torch.float32)


class NpuError(RuntimeError):
    """What torch_npu raises for arguments its documentation rules out."""


class NotEmulated(NpuError):
    """A documented feature of the function that this emulator does not implement."""


def require(cond: bool, fn: str, message: str) -> None:
    if not cond:
        raise NpuError(f"torch_npu.{fn}: {message}")


def unused(fn: str, **kwargs: object) -> None:
    """Optional arguments of a feature the emulator does not implement must keep their defaults."""
    for name, value in kwargs.items():
        if value is not None and value is not False:
            raise NotEmulated(f"torch_npu.{fn}: {name} is not emulated (pass None)")


def host_ints(fn: str, name: str, values: object) -> list[int]:
    """SymInt[] arguments are host lists of ints; a device tensor is not one."""
    require(
        isinstance(values, Sequence) and not isinstance(values, torch.Tensor),
        fn,
        f"{name} must be a host list of ints, got {type(values).__name__}",
    )
    out = list(values)  # type: ignore[call-overload]
    require(all(isinstance(v, int) for v in out), fn, f"{name} must hold Python ints")
    return out


def soc() -> str:
    """The SoC the emulated platform describes ("ascend910b", "ascend310p", ...)."""
    from anyaccel import context

    platform = context.get().platform
    return str(platform.capability) if platform.name == "npu" else "ascend910b"


def is_310p() -> bool:
    return soc() == "ascend310p"


def dtype_of_soc(fn: str, dtype: torch.dtype) -> None:
    """The Atlas inference series (310P) has no bfloat16 (every CANN op doc leaves it out there)."""
    require(
        not (dtype == torch.bfloat16 and is_310p()), fn, "bfloat16 is not supported on Atlas inference (310P)"
    )
