"""The portable Triton provider: one kernel per op family for every platform whose descriptor says Triton
runs there (CUDA, ROCm, XPU, MUSA). triton is imported only when one of these kernels is selected."""

from __future__ import annotations

import os

from anyaccel.hookspecs import hookimpl
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


def interpreter_reason() -> str | None:
    """Triton kernels execute off-GPU only in the interpreter (TRITON_INTERPRET=1), for `anyaccel check`."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return "set TRITON_INTERPRET=1 to run Triton kernels on the CPU interpreter"
    return None


KERNELS: list[Kernel] = []


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return list(KERNELS)
