"""How this process's share of the model is chosen: tensor parallelism over one torch.distributed group, and
expert parallelism for MoE models over the same group.

Tensor parallel (TP): attention heads, MLP and expert intermediate dims and the vocabulary are split
across the group's ranks; row-parallel layers and the vocab-parallel embedding all-reduce their output.
Expert parallel (EP): each rank holds a contiguous range of whole experts instead of a slice of every
expert; the MoE output is all-reduced like a row-parallel layer. Attention stays tensor-parallel.
World size 1 is the identity: no process group and no collective.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch


@dataclass(frozen=True)
class Parallel:
    rank: int = 0
    world_size: int = 1
    expert_parallel: bool = False
    comm: Any = None  # anyaccel.comm.Communicator over the group; None when world_size == 1

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.world_size == 1 else self.comm.all_reduce(x)

    def all_gather(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x if self.world_size == 1 else self.comm.all_gather(x, dim=dim)

    def split(self, size: int, what: str) -> tuple[int, int]:
        """(start, length) of this rank's equal share of `size` items; `what` names them in the error."""
        if size % self.world_size:
            raise ValueError(
                f"{what} ({size}) is not divisible by the tensor-parallel size {self.world_size}"
            )
        part = size // self.world_size
        return self.rank * part, part


SINGLE = Parallel()


def init_parallel(expert_parallel: bool = False, timeout_s: float | None = None) -> Parallel:
    """The Parallel of this process: world size 1 unless launched by torchrun (WORLD_SIZE > 1) or inside an
    initialised torch.distributed group (see anyaccel.comm.init_distributed, which joins the group).
    timeout_s: how long a rank waits for the others (None: ANYACCEL_DIST_TIMEOUT, default 120 s)."""
    from anyaccel.comm import init_distributed

    comm = init_distributed(None if timeout_s is None else timedelta(seconds=timeout_s))
    if comm.world_size == 1:
        return Parallel(expert_parallel=expert_parallel)
    return Parallel(comm.rank, comm.world_size, expert_parallel, comm)


# what torch.distributed's backends say when a peer does not answer in time or has gone away
_PEER_FAILURES = ("timed out", "timeout", "connection closed", "connection reset", "broken pipe")


def peer_failure(parallel: Parallel, exc: BaseException) -> RuntimeError | None:
    """A clear error for `exc` when it is a collective that a peer rank left unanswered (stopped, hung or
    died), else None."""
    text = str(exc)
    if parallel.world_size == 1 or not isinstance(exc, RuntimeError):
        return None
    if not any(marker in text.lower() for marker in _PEER_FAILURES):
        return None
    from anyaccel import context

    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return RuntimeError(
        f"rank {parallel.rank} of {parallel.world_size}: a collective got no answer from another rank "
        f"within ANYACCEL_DIST_TIMEOUT={context.get().settings.dist_timeout:g} s, or a rank went away: a "
        f"rank stopped, hung or died ({first})"
    )
