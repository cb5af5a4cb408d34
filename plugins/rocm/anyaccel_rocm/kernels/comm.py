"""comm.all_reduce through AITER's custom all-reduce (one node, IPC buffers), with RCCL behind it.

CustomAllreduce attaches to a non-NCCL group (it exchanges IPC handles over it): a gloo twin of the
communicator's group is created on first use by its members only. Whenever AITER declines an input
(`custom_all_reduce` returns None: a size beyond its limit, not a multiple of 16 bytes, a group spanning
nodes), the reference all-reduce (RCCL on the device) runs instead."""

from __future__ import annotations

import torch
import torch.distributed as dist
from aiter.dist.device_communicators.custom_all_reduce import CustomAllreduce

from anyaccel.platforms.base import Platform
from anyaccel.providers.reference.comm import _group
from anyaccel.providers.reference.comm import all_reduce as rccl_all_reduce


def _attach(group: dist.ProcessGroup, device: torch.device) -> CustomAllreduce:
    if dist.get_backend(group) == dist.Backend.NCCL:
        ranks = dist.get_process_group_ranks(group)
        group = dist.new_group(ranks, backend="gloo", use_local_synchronization=True)
    return CustomAllreduce(group, device)


def custom_all_reduce(spec, platform: Platform):
    communicators: dict[str, CustomAllreduce] = {}

    def run(x: torch.Tensor, group_name: str) -> torch.Tensor:
        ca = communicators.get(group_name)
        if ca is None:
            ca = communicators[group_name] = _attach(_group(group_name), x.device)
        out = ca.custom_all_reduce(x.contiguous())
        return out if out is not None else rccl_all_reduce(x, group_name)

    return run
