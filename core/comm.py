"""Communicator: the comm.* ops bound once for one torch.distributed process group.

    comm = anyaccel.comm.init_distributed()          # under torchrun; a single rank without it
    y = comm.all_reduce(x)                            # the bound kernel, chosen by x's size class

Size classes. A plugin may offer a kernel for small messages only (a one-shot all-reduce through a
pre-registered buffer, say): its `supports` predicate accepts a CommSpec only when `spec.max_bytes` fits its
buffer. The communicator therefore resolves every op once per size class, with `max_bytes` set to the
class's upper bound (the last class is unbounded), and calls the kernel of the smallest class that holds the
input (x.nbytes, one rank's tensor). Adjacent classes that resolve to the same kernel are merged, so with one
kernel for all sizes a call does no size test at all. Resolution happens once per (op, dtype): eagerly for
the dtypes given to the constructor, on first use for any other (bind every dtype a compiled model
communicates in up front, so that no resolution happens inside torch.compile).

At world size 1 every method returns its input unchanged: no kernel is bound and no collective runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

import torch
import torch.distributed as dist

from .context import get as _context
from .dispatch import resolve
from .ops.comm import CommSpec

KIB = 1024
MIB = 1024 * KIB
# Upper bounds (bytes of one rank's input) of the bounded size classes; a last, unbounded class follows.
# 64 KiB and 512 KiB bracket where one-shot and two-shot custom all-reduces are used; 8 MiB is a typical
# registered-buffer size.
DEFAULT_SIZE_CLASSES: tuple[int, ...] = (64 * KIB, 512 * KIB, 8 * MIB)

KernelFn = Callable[..., torch.Tensor]
# (largest x.nbytes, kernel name, kernel), by increasing bound
SizeTable = tuple[tuple[int, str, KernelFn], ...]
UNBOUNDED = sys.maxsize
OPS = ("comm.all_reduce", "comm.all_gather", "comm.reduce_scatter", "comm.all_to_all", "comm.broadcast")


class Communicator:
    """The comm.* ops over one process group (group None: the default group if one is initialised, else a
    single-rank world). rank / world_size are this process's place in the group; group_name is the name
    the kernels receive; backend is the group's torch.distributed backend ("" for a single rank)."""

    def __init__(
        self,
        group: dist.ProcessGroup | None = None,
        dtypes: Iterable[torch.dtype] = (),
        size_classes: Sequence[int] = DEFAULT_SIZE_CLASSES,
    ) -> None:
        if group is None and dist.is_available() and dist.is_initialized():
            group = dist.group.WORLD
        self.group = group
        self.rank = dist.get_rank(group) if group is not None else 0
        self.world_size = group.size() if group is not None else 1
        self.group_name = group.group_name if group is not None else ""
        self.backend = str(dist.get_backend(group)) if group is not None else ""
        if list(size_classes) != sorted(set(size_classes)) or any(b <= 0 for b in size_classes):
            raise ValueError(
                f"Communicator: size_classes must be increasing positive byte counts, "
                f"got {list(size_classes)}"
            )
        self.size_classes = tuple(size_classes)
        self._tables: dict[tuple[str, torch.dtype], SizeTable] = {}
        for dtype in dtypes if self.world_size > 1 else ():
            for op in OPS:
                self._table(op, dtype)

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (comm.all_reduce)."""
        if self.world_size == 1:
            return x
        return self._kernel("comm.all_reduce", x)(x, self.group_name)

    def all_gather(self, x: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Every rank's x concatenated along `dim` in rank order (comm.all_gather)."""
        if self.world_size == 1:
            return x
        return self._kernel("comm.all_gather", x)(x, self.group_name, dim)

    def reduce_scatter(self, x: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Sum over ranks, this rank's chunk along `dim` (comm.reduce_scatter)."""
        if self.world_size == 1:
            return x
        return self._kernel("comm.reduce_scatter", x)(x, self.group_name, dim)

    def all_to_all(
        self,
        x: torch.Tensor,
        output_split_sizes: list[int] | None = None,
        input_split_sizes: list[int] | None = None,
    ) -> torch.Tensor:
        """Rows of x exchanged by uneven or equal splits along dim 0 (comm.all_to_all)."""
        if self.world_size == 1:
            return x
        return self._kernel("comm.all_to_all", x)(x, self.group_name, output_split_sizes, input_split_sizes)

    def broadcast(self, x: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Rank `src`'s x on every rank (comm.broadcast)."""
        if self.world_size == 1:
            return x
        return self._kernel("comm.broadcast", x)(x, self.group_name, src)

    def selection(self, op: str, dtype: torch.dtype) -> list[tuple[int | None, str]]:
        """The kernels bound for `op` and `dtype`: (largest x.nbytes, None if unbounded; kernel name).
        Empty at world size 1, where no kernel is bound."""
        if self.world_size == 1:
            return []
        return [(None if bound == UNBOUNDED else bound, name) for bound, name, _ in self._table(op, dtype)]

    def _kernel(self, op: str, x: torch.Tensor) -> KernelFn:
        table = self._tables.get((op, x.dtype))
        if table is None:
            table = self._table(op, x.dtype)
        if len(table) == 1:
            return table[0][2]
        nbytes = x.nbytes
        for bound, _, fn in table:  # a handful of classes: a loop is cheaper than bisect and traces cleanly
            if nbytes <= bound:
                return fn
        raise AssertionError("the last size class is unbounded")

    def _table(self, op: str, dtype: torch.dtype) -> SizeTable:
        table = self._tables.get((op, dtype))
        if table is None:
            table = self._tables[(op, dtype)] = self._bind(op, dtype)
        return table

    def _bind(self, op: str, dtype: torch.dtype) -> SizeTable:
        rows: list[tuple[int, str, KernelFn]] = []
        for bound in (*self.size_classes, None):
            res = resolve(op, CommSpec(dtype, self.world_size, bound))
            fn = res.fn  # raises ResolutionError, naming every candidate, when no kernel serves the class
            name = res.selected.name if res.selected else ""
            if rows and rows[-1][1] == name:
                rows.pop()  # the same kernel serves the smaller class too: keep only the larger bound
            rows.append((UNBOUNDED if bound is None else bound, name, fn))
        return tuple(rows)


def init_distributed(timeout: timedelta | None = None, dtypes: Iterable[torch.dtype] = ()) -> Communicator:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) over the platform's dist backend, and return a Communicator for it.

    Without WORLD_SIZE, or with WORLD_SIZE=1, no group is created and the communicator is single-rank.
    An already initialised default group is reused. timeout: how long a rank waits for the others, in the
    rendezvous and in every collective (None: ANYACCEL_DIST_TIMEOUT, default 120 s), so a rank that stops
    answering ends the others with an error instead of a hang. On an accelerator, this process's device is
    set to LOCAL_RANK first, as the collective backends expect one device per rank."""
    if not dist.is_initialized():
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return Communicator(None, dtypes)
        missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise ValueError(
                f"init_distributed: WORLD_SIZE={world_size} but {', '.join(missing)} not set; "
                "launch with torchrun, or set the variables torchrun sets"
            )
        platform = _context().platform
        if platform.torch_device_type != "cpu":
            torch.accelerator.set_device_index(int(os.environ.get("LOCAL_RANK", "0")))
        if timeout is None:
            timeout = timedelta(seconds=_context().settings.dist_timeout)
        dist.init_process_group(
            platform.torch_dist_backend, rank=int(os.environ["RANK"]), world_size=world_size, timeout=timeout
        )
    return Communicator(dist.group.WORLD, dtypes)


def shutdown_distributed() -> None:
    """Leave the process group, if one is initialised: a barrier first, so that no rank closes its
    connections while a peer is still receiving the last collective's data (gloo aborts a process whose
    connection closes mid-transfer: "terminate called without an active exception"). A peer that has died
    makes the barrier fail at once; one that hangs, after ANYACCEL_DIST_TIMEOUT; the group is destroyed
    either way."""
    if not dist.is_initialized():
        return
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
