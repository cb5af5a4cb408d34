"""comm.all_reduce through AITER's IPC all-reduces on one node, with RCCL behind them.

- custom_all_reduce: CustomAllreduce, for the size classes up to its buffer (gates.CUSTOM_AR_*).
- quick_all_reduce: QuickAllReduce at its FP level (gates.QR_*), for the classes that reach its minimum
  size; it outranks the custom all-reduce there (vLLM's order), and hands each smaller input of those
  classes to the custom all-reduce where that one serves the spec, else to RCCL.

Both attach to a non-NCCL group (they exchange IPC handles over it): a gloo twin of the communicator's
group is created on first use, once per group, by its members only. Each communicator is built on the
first call (every rank makes that call together) and shared by the kernels of its group. Whenever AITER
declines an input (a size outside its window, not a multiple of 16 bytes, a group spanning nodes), the
next kernel runs; RCCL (the reference all-reduce on the device) is the last. AITER decides once per process
whether QuickReduce may run, when its module is first imported: the kernel imports it with the FP level
set (and `anyaccel warmup` does, building its extension); a process that imported it earlier without a
level keeps it disabled, and every input then takes the fallbacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from aiter.dist.device_communicators.custom_all_reduce import CustomAllreduce

from anyaccel.env import environ
from anyaccel.platforms.base import Platform
from anyaccel.providers.reference.comm import _group
from anyaccel.providers.reference.comm import all_reduce as rccl_all_reduce

from .. import gates
from . import supports
from .warmup import attach

AllReduce = Callable[[torch.Tensor, str], torch.Tensor]

_cpu_groups: dict[str, dist.ProcessGroup] = {}
_custom: dict[str, CustomAllreduce] = {}
_quick: dict[str, Any] = {}


def _cpu_group(group_name: str) -> dist.ProcessGroup:
    group = _group(group_name)
    if dist.get_backend(group) != dist.Backend.NCCL:
        return group
    twin = _cpu_groups.get(group_name)
    if twin is None:
        ranks = dist.get_process_group_ranks(group)
        twin = _cpu_groups[group_name] = dist.new_group(ranks, backend="gloo", use_local_synchronization=True)
    return twin


def _custom_comm(group_name: str, device: torch.device) -> CustomAllreduce:
    ca = _custom.get(group_name)
    if ca is None:
        ca = _custom[group_name] = CustomAllreduce(_cpu_group(group_name), device)
    return ca


def _quick_comm(group_name: str, device: torch.device) -> Any:
    qr = _quick.get(group_name)
    if qr is None:
        with environ(gates.QR_ENV):
            from aiter.dist.device_communicators.quick_all_reduce import QuickAllReduce

            qr = _quick[group_name] = QuickAllReduce(_cpu_group(group_name), device)
    return qr


def _warm_quick(fn: AllReduce, spec: Any) -> None:
    """Importing AITER's module at the FP level builds its quick-reduce extension (the import calls
    qr_max_size); the communicator itself needs the group, so it is built on the first call."""
    with environ(gates.QR_ENV):
        import aiter.dist.device_communicators.quick_all_reduce  # noqa: F401


def custom_all_reduce(spec, platform: Platform) -> AllReduce:
    def run(x: torch.Tensor, group_name: str) -> torch.Tensor:
        out = _custom_comm(group_name, x.device).custom_all_reduce(x.contiguous())
        return out if out is not None else rccl_all_reduce(x, group_name)

    return run


def quick_all_reduce(spec, platform: Platform) -> AllReduce:
    below = dataclasses.replace(spec, max_bytes=supports.quick_min_bytes(spec.dtype, spec.world_size) - 1)
    fallback = (
        custom_all_reduce(below, platform)
        if supports.custom_all_reduce(below, platform) is None
        else rccl_all_reduce
    )

    def run(x: torch.Tensor, group_name: str) -> torch.Tensor:
        qr = _quick_comm(group_name, x.device)
        x = x.contiguous()
        return qr.quick_all_reduce(x) if qr.should_quick_allreduce(x) else fallback(x, group_name)

    return attach(run, _warm_quick)
