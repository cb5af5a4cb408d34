"""comm.all_reduce through torch symmetric memory (sm_90, sm_100, sm_103), with NCCL behind it.

Bind: the spec's world size and largest message pick the algorithm from gates.py (NVLS multimem where it
wins, two-shot otherwise); the kernel is rejected where no size table exists, and the Communicator then binds
NCCL (the reference's torch.distributed path) for that size class. First call per group: one symmetric buffer
of max_bytes, rendezvoused across the group (every rank makes the same first call). Each call copies x in,
reduces in place and returns a copy. Larger messages never reach this binding: the Communicator resolves one
kernel per size class (CommSpec.max_bytes), and the classes above the table's limit bind NCCL.
"""

from __future__ import annotations

import importlib

import torch

from anyaccel.ops.comm import CommSpec
from anyaccel.platforms.base import Platform

from . import gates


def all_reduce(spec: CommSpec, platform: Platform):
    ops = importlib.import_module("anyaccel_cuda.torch_ops")  # emulated on an emulated platform
    multimem = spec.world_size in gates.MULTIMEM_WORLD_SIZES.get(platform.capability, ())
    reduce_ = ops.multimem_all_reduce_ if multimem else ops.two_shot_all_reduce_
    limit = int(spec.max_bytes or 0)
    buffers: dict[str, torch.Tensor] = {}

    def symm_all_reduce(x: torch.Tensor, group_name: str) -> torch.Tensor:
        if x.nbytes > limit:
            raise ValueError(f"comm.all_reduce: {x.nbytes} bytes exceed this binding's max_bytes {limit}")
        buf = buffers.get(group_name)
        if buf is None:
            buf = ops.symm_mem_empty(-(-limit // x.element_size()), x.dtype, x.device)
            ops.symm_mem_rendezvous(buf, group_name)
            buffers[group_name] = buf
        view = buf[: x.numel()]
        view.copy_(x.reshape(-1))
        reduce_(view, "sum", group_name)
        return view.clone().view(x.shape)

    return symm_all_reduce
