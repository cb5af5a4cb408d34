"""torch's CUDA-only entry points, as the kernels call them.

Each name is torch's own function (no wrapper, no per-call cost). They exist as one module so that an
emulated cuda platform can replace them: on host tensors these functions either do not exist or run other
code, so ANYACCEL_EMULATE=cuda:<sm> installs anyaccel_cuda/emulators/torch_ops.py in this module's place.
Kernels fetch this module when they are bound (`importlib.import_module`), never at import.
"""

from __future__ import annotations

import torch
from torch.nn.attention.varlen import varlen_attn

# (a [M, K] fp8 row-major, b [K, N] fp8 column-major, scale_a, scale_b, bias=None, scale_result=None,
#  out_dtype=None, use_fast_accum=False) -> [M, N]
scaled_mm = torch._scaled_mm
# (mat_a [sum M_g, K], mat_b [G, K, N], offs=[G] int32 cumulative row ends, bias=None, out_dtype=None)
grouped_mm = torch._grouped_mm
# (a [M, K] int8, b [K, N] int8) -> [M, N] int32
int_mm = torch._int_mm


def symm_mem_empty(numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 1-D tensor in symmetric memory (torch.distributed._symmetric_memory.empty)."""
    from torch.distributed import _symmetric_memory as symm_mem

    return symm_mem.empty(numel, dtype=dtype, device=device)


def symm_mem_rendezvous(tensor: torch.Tensor, group_name: str) -> None:
    """Exchange the buffer's handles across the group (collective: every rank calls it once)."""
    from torch.distributed import _symmetric_memory as symm_mem
    from torch.distributed.distributed_c10d import GroupName

    symm_mem.rendezvous(tensor, GroupName(group_name))


def two_shot_all_reduce_(tensor: torch.Tensor, reduce_op: str, group_name: str) -> torch.Tensor:
    """In-place reduction of a view of a rendezvoused symmetric buffer (reduce-scatter + all-gather)."""
    return torch.ops.symm_mem.two_shot_all_reduce_(tensor, reduce_op, group_name)


def multimem_all_reduce_(tensor: torch.Tensor, reduce_op: str, group_name: str) -> torch.Tensor:
    """In-place reduction through NVLink SHARP multicast (NVLS) on a rendezvoused symmetric buffer."""
    return torch.ops.symm_mem.multimem_all_reduce_(tensor, reduce_op, group_name)


__all__ = [
    "grouped_mm",
    "int_mm",
    "multimem_all_reduce_",
    "scaled_mm",
    "symm_mem_empty",
    "symm_mem_rendezvous",
    "two_shot_all_reduce_",
    "varlen_attn",
]
