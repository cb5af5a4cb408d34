"""The custom all-reduce on two emulated gfx942 ranks (gloo underneath): inputs within AITER's limits go
through CustomAllreduce, others (not a multiple of 16 bytes) fall back to the reference all-reduce."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from anyaccel.comm import shutdown_distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), ANYACCEL_EMULATE="rocm:gfx942")
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        import anyaccel
        from anyaccel.comm import Communicator
        from anyaccel.ops.comm import CommSpec

        comm = Communicator(dtypes=(torch.bfloat16,))
        from anyaccel_rocm.emulators.aiter.dist import custom_all_reduce as emulated

        x = torch.full((64, 8), float(rank + 1), dtype=torch.bfloat16)
        odd = torch.full((3,), float(rank + 1), dtype=torch.bfloat16)  # 6 bytes: AITER declines it
        y, z = comm.all_reduce(x), comm.all_reduce(odd)
        spec = CommSpec(torch.bfloat16, 2, 64 * 1024)  # the Communicator's smallest size class
        kernel = anyaccel.resolve("comm.all_reduce", spec).selected.name
        results.put((rank, kernel, emulated.calls, bool((y == 3).all()), bool((z == 3).all())))
    finally:
        shutdown_distributed()


def test_custom_all_reduce_and_its_fallback():
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert got == [
        (0, "aiter.custom_all_reduce", 1, True, True),
        (1, "aiter.custom_all_reduce", 1, True, True),
    ]
