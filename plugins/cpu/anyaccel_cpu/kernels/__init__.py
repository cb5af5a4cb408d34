"""Kernel records of the CPU provider: data only, targets in the modules beside this one.

They run on the `cpu` platform and rank above the torch reference, which stays behind them for every spec
they decline (each says why in `anyaccel explain`).
"""

from __future__ import annotations

import torch

from anyaccel.registry import Kernel

from .supports import attention_supports, experts_supports, onednn_supports

PRIORITY = 50
FLOATS = frozenset({torch.float32, torch.float16, torch.bfloat16})


def _kernel(op: str, name: str, target: str, *, dtypes=FLOATS, **kwargs) -> Kernel:
    return Kernel(
        op=op,
        name=f"cpu.{name}",
        target=f"{__name__}.{target}",
        platforms=frozenset({"cpu"}),
        dtypes=dtypes,
        priority=PRIORITY,
        verified="cpu",
        **kwargs,
    )


KERNELS: list[Kernel] = [
    # both read and write the NHD cache: slots are rows of its flat [blocks * block_size, Hkv, D] view
    _kernel(
        "attention.decode",
        "sdpa_decode",
        "attention:decode",
        supports=attention_supports,
        factory=True,
        kv_layout="NHD",
    ),
    _kernel("attention.write_kv", "write_kv", "attention:write_kv", factory=True, kv_layout="NHD"),
    _kernel(
        "linear.gemm",
        "onednn_gemm",
        "linear:gemm",
        dtypes=frozenset({torch.float32}),
        supports=onednn_supports,
        prepare=f"{__name__}.linear:prepare",
    ),
    _kernel("norm.rms_norm", "rms_norm", "norm:rms_norm"),
    _kernel("norm.add_rms_norm", "add_rms_norm", "norm:add_rms_norm"),
    _kernel(
        "moe.experts",
        "dense_experts",
        "moe:experts",
        dtypes=frozenset({torch.float32}),
        supports=experts_supports,
        factory=True,
        prepare=f"{__name__}.moe:prepare",
    ),
]
