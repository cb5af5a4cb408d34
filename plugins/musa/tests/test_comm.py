"""Communication on MUSA is the reference collectives over the platform's dist backend, mccl, through the
Communicator. Two emulated S5000 ranks joined by `init_distributed` (gloo stands in for mccl on the host):
the platform names mccl, the group really runs gloo, and the bound all-reduce and all-gather are exact."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from anyaccel.comm import shutdown_distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, results) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        ANYACCEL_EMULATE="musa:mp_31",
    )

    import anyaccel
    from anyaccel.comm import init_distributed

    try:
        platform = anyaccel.get_platform()
        comm = init_distributed(dtypes=(torch.bfloat16,))
        x = torch.full((5, 3), float(rank + 1), dtype=torch.bfloat16)
        summed, gathered = comm.all_reduce(x), comm.all_gather(x)
        results.put(
            (
                rank,
                platform.dist_backend,
                comm.backend,
                bool((summed == 3).all()),
                gathered.shape == (10, 3) and bool((gathered[5:] == 2).all()),
            )
        )
    finally:
        shutdown_distributed()


def test_collectives_over_the_platforms_backend():
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert got == [(0, "mccl", "gloo", True, True), (1, "mccl", "gloo", True, True)]
