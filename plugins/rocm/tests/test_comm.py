"""AITER's all-reduces on two emulated gfx942 ranks (gloo underneath), through a Communicator: the custom
all-reduce for the small size classes, the quick all-reduce (FP level) for the classes that reach its
window, and the fallbacks each takes (quick -> custom -> RCCL) for inputs outside their limits."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from anyaccel import context
from anyaccel.comm import shutdown_distributed
from anyaccel.conformance.cases import comm as comm_cases
from anyaccel.conformance.runner import run_case

F16, BF16 = torch.float16, torch.bfloat16
MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _custom(rank: int) -> tuple:
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
    return (kernel, emulated.calls, bool((y == 3).all()), bool((z == 3).all()))


def _quick(rank: int) -> tuple:
    from anyaccel.comm import Communicator

    comm = Communicator(dtypes=(F16, BF16))
    seen = [0, 0]

    def reduce(n: int, dtype: torch.dtype) -> tuple[int, int, bool]:
        y = comm.all_reduce(torch.full((n,), float(rank + 1), dtype=dtype))
        # imported after the first call, as AITER's module must be: it reads its level on import
        from anyaccel_rocm.emulators.aiter.dist import custom_all_reduce as custom
        from anyaccel_rocm.emulators.aiter.dist import quick_all_reduce as quick

        new = (quick.calls - seen[0], custom.calls - seen[1])
        seen[:] = quick.calls, custom.calls
        return (*new, bool((y == 3).all()))

    return (
        comm.selection("comm.all_reduce", F16),
        comm.selection("comm.all_reduce", BF16),
        reduce(MIB // 2 + 8, F16),  # 1 MiB + 16 bytes: fp16 on 2 ranks starts at 1 MiB
        reduce(2 * MIB // 2, BF16),  # 2 MiB: bf16 (not cast to fp16) starts at 2 MiB
        reduce(600 * 1024 // 2, F16),  # in the quick kernel's size class, below its window: custom
        reduce(MIB // 2 + 9, F16),  # 1 MiB + 18 bytes: neither takes it (16-byte rule): RCCL
        "AITER_QUICK_REDUCE_QUANTIZATION" in os.environ,  # set only while AITER read it
    )


def _rank(rank: int, port: int, body, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), ANYACCEL_EMULATE="rocm:gfx942")
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        results.put((rank, body(rank)))
    finally:
        shutdown_distributed()


def _on_two_ranks(body) -> list[tuple]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, body, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    return [result for _, result in got]


def test_custom_all_reduce_and_its_fallback():
    assert _on_two_ranks(_custom) == [("aiter.custom_all_reduce", 1, True, True)] * 2


def test_quick_all_reduce_for_large_messages_and_its_fallbacks():
    small, large = (512 * 1024, "aiter.custom_all_reduce"), (None, "aiter.quick_all_reduce")
    want = ([small, large], [small, large], (1, 0, True), (1, 0, True), (0, 1, True), (0, 0, True), False)
    assert _on_two_ranks(_quick) == [want, want]


@pytest.mark.parametrize(
    ("gfx", "world_size", "dtype", "shape"),
    [
        ("gfx942", 2, F16, (8, 65537)),  # 1 MiB + 16 bytes
        ("gfx942", 2, BF16, (16, 65537)),  # 2 MiB + 32 bytes
        ("gfx950", 4, F16, (8, 65537)),
    ],
)
def test_quick_all_reduce_passes_the_kit_in_its_window(monkeypatch, gfx, world_size, dtype, shape):
    """The kit's distributed runner (spawned gloo ranks) against its float64 oracle, on inputs the quick
    all-reduce takes itself (the kit's own comm grid is far below its window)."""
    monkeypatch.setenv("ANYACCEL_EMULATE", f"rocm:{gfx}")
    inputs = comm_cases._same(world_size, dtype, shape)
    case = comm_cases._case(
        "comm.all_reduce", f"shape={list(shape)}", inputs, comm_cases._reduction_tolerance(dtype, world_size)
    )
    ctx = context.get()
    kernel = next(k for k in ctx.kernels_for("comm.all_reduce") if k.name == "aiter.quick_all_reduce")
    result = run_case(kernel, case, ctx.platform, "cpu", False, {})
    assert result.status == "passed", f"[{case.id}]: {result.status} {result.detail}"
