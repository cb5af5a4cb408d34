"""comm.*: the torch reference against the conformance kit across spawned gloo ranks, the Communicator (world
size 1, and two torchrun-style ranks doing tensor-parallel work), float8 over gloo, size-class selection of a
plugin's small-message kernel, and the kit's handling of wrong, raising and hanging kernels.

Run as a script, this file is the per-rank program of the two-rank tests (RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set as torchrun sets them); it prints its findings as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch

from anyaccel import context
from anyaccel.comm import Communicator, init_distributed
from anyaccel.conformance.case import Case
from anyaccel.conformance.cases import cases_for
from anyaccel.conformance.distributed import run_distributed_case
from anyaccel.conformance.runner import check
from anyaccel.ops.base import ContractError

COMM_OPS = ("comm.all_reduce", "comm.all_gather", "comm.reduce_scatter", "comm.all_to_all", "comm.broadcast")
SMALL_LIMIT = 64 * 1024  # the test plugin's small-message kernel serves inputs up to this many bytes
RANK_TIMEOUT_S = 240  # spawning two ranks that import torch on a loaded 2-core machine

# Two test plugins, installed for real (dist-info + entry point) into a temporary site directory.
SIZETEST_PLUGIN = f"""
from anyaccel.hookspecs import hookimpl
from anyaccel.providers.reference import comm as reference
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"
CALLS = []  # x.nbytes of every call, so a test can see which sizes this kernel served


def _fits(spec, platform):
    if spec.max_bytes is not None and spec.max_bytes <= {SMALL_LIMIT}:
        return None
    return "serves messages up to {SMALL_LIMIT} bytes only"


def small_all_reduce(x, group_name):
    CALLS.append(x.nbytes)
    return reference.all_reduce(x, group_name)


@hookimpl
def anyaccel_kernels():
    return [Kernel(op="comm.all_reduce", name="sizetest.small_all_reduce", platforms={{"cpu"}},
                   target=__name__ + ":small_all_reduce", supports=_fits)]
"""

BROKEN_PLUGIN = """
import torch.distributed as dist

from anyaccel.hookspecs import hookimpl
from anyaccel.providers.reference import comm as reference
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"


def skips_sum(x, group_name):
    return x.clone()


def raises_on_rank1(x, group_name):
    if dist.get_rank() == 1:
        raise RuntimeError("rank 1 gave up")
    return reference.all_reduce(x, group_name)


def rank1_leaves_early(x, group_name):
    return x.clone() if dist.get_rank() == 1 else reference.all_reduce(x, group_name)


@hookimpl
def anyaccel_kernels():
    names = ("skips_sum", "raises_on_rank1", "rank1_leaves_early")
    return [
        Kernel(op="comm.all_reduce", name="broken." + name, platforms={"cpu"}, target=f"{__name__}:{name}")
        for name in names
    ]
"""


def _install_plugin(site: Path, dist_name: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist_name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[anyaccel.plugins]\n{module} = {module}\n")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A site directory holding the two test plugins, on sys.path for the whole module, so that spawned
    ranks (which inherit sys.path) see them and the kit's rank groups can be reused across tests."""
    site = tmp_path_factory.mktemp("comm-plugins")
    _install_plugin(site, "anyaccel-sizetest", "anyaccel_sizetest", SIZETEST_PLUGIN)
    _install_plugin(site, "anyaccel-brokencomm", "anyaccel_brokencomm", BROKEN_PLUGIN)
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))


def _kernel(op: str, name: str):
    return next(k for k in context.get().kernels_for(op) if k.name == name)


def _case(op: str, ident: str) -> Case:
    return next(c for c in cases_for(op) if c.id == ident)


# --- world size 1 -------------------------------------------------------------------------------------------


def test_single_rank_communicator_is_identity_without_collectives():
    comm = Communicator(dtypes=(torch.float32,))
    assert (comm.rank, comm.world_size, comm.group_name) == (0, 1, "")
    assert comm.selection("comm.all_reduce", torch.float32) == []
    x = torch.randn(4, 6)
    assert comm.all_reduce(x) is x
    assert comm.all_gather(x, dim=1) is x
    assert comm.reduce_scatter(x) is x
    assert comm.all_to_all(x, [4], [4]) is x
    assert comm.broadcast(x, src=0) is x


def test_init_distributed_without_torchrun_is_single_rank(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed().world_size == 1


def test_init_distributed_names_missing_torchrun_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="init_distributed: WORLD_SIZE=2 but RANK, MASTER_ADDR, MASTER_PORT"):
        init_distributed()


def test_size_classes_must_increase():
    with pytest.raises(ValueError, match="size_classes must be increasing"):
        Communicator(size_classes=(1024, 512))


# --- the conformance kit ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reference_passes_the_comm_kit(plugin_site):
    for op in COMM_OPS:
        (report,) = check(op=op, provider="reference")
        failures = [(r.case, r.detail) for r in report.results if r.status != "passed"]
        assert not failures, f"{op}: {failures}"
        assert report.count("passed") == len(cases_for(op)) > 0


def test_comm_grid_covers_ranks_dtypes_and_splits():
    ids = {op: [c.id for c in cases_for(op)] for op in COMM_OPS}
    assert any(i.startswith("ws=3") for i in ids["comm.all_to_all"])
    assert any("sent=0,0/2,3" in i for i in ids["comm.all_to_all"])  # a rank with no rows at all
    for op in ("comm.all_gather", "comm.all_to_all", "comm.broadcast"):
        assert any(i.endswith("float8_e4m3fn") for i in ids[op]), op
    for op in ("comm.all_reduce", "comm.reduce_scatter"):
        assert not any("float8" in i for i in ids[op]), op
        assert {i.rsplit(" ", 1)[1] for i in ids[op]} == {"float32", "bfloat16", "float16"}


@pytest.mark.slow
def test_kit_reports_hanging_wrong_and_raising_kernels_and_recovers(plugin_site):
    """One scenario, so that it spawns only two groups: a rank stuck in a collective times out and its group
    is dropped; the next case runs in a fresh group and fails on its result; a rank that raises fails the
    case with its message, without waiting for the peer stuck in its all_reduce."""
    case = _case("comm.all_reduce", "ws=2 shape=[7, 333] float32")
    stuck = run_distributed_case(_kernel("comm.all_reduce", "broken.rank1_leaves_early"), case, timeout_s=3)
    assert stuck.status == "failed"
    assert "rank 0" in stuck.detail and "timed out" in stuck.detail.lower(), stuck.detail
    wrong = run_distributed_case(_kernel("comm.all_reduce", "broken.skips_sum"), case, timeout_s=3)
    assert wrong.status == "failed"
    assert wrong.detail.startswith("out of tolerance: out@rank0 ("), wrong.detail
    assert "out@rank1 (" in wrong.detail and "expected" in wrong.detail, wrong.detail
    start = time.monotonic()
    raising = run_distributed_case(_kernel("comm.all_reduce", "broken.raises_on_rank1"), case, timeout_s=60)
    assert raising.status == "failed"
    assert "rank 1: RuntimeError: rank 1 gave up" in raising.detail
    assert time.monotonic() - start < 30  # dropped soon after rank 1 raised, long before rank 0's timeout


def test_a_case_that_cannot_reach_the_ranks_fails_with_the_reason():
    case = _case("comm.all_reduce", "ws=2 shape=[1] float32")
    unpicklable = Case(
        case.op, case.id, case.spec, lambda seed: case.make(seed), case.oracle, case.tolerance, world_size=2
    )
    result = run_distributed_case(_kernel("comm.all_reduce", "reference.all_reduce"), unpicklable)
    assert result.status == "failed" and result.detail.startswith("bad distributed case:")


# --- two torchrun-style ranks -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two_ranks(plugin_site: Path) -> list[dict[str, Any]]:
    """Run this file as the program of two ranks, with the environment torchrun gives them (on loopback)
    and only the size-test plugin enabled; returns each rank's findings."""
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANYACCEL_")}
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            GLOO_SOCKET_IFNAME=next(name for _, name in socket.if_nameindex() if name.startswith("lo")),
            ANYACCEL_PLUGINS="anyaccel-sizetest",
            OMP_NUM_THREADS="1",
            PYTHONPATH=os.pathsep.join([str(plugin_site), *sys.path]),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    findings = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=RANK_TIMEOUT_S)
            assert proc.returncode == 0, f"rank exited with {proc.returncode}:\n{err[-3000:]}"
            findings.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    return findings


@pytest.mark.slow
def test_two_torchrun_ranks_tensor_parallel_float8_and_size_classes(plugin_site):
    """One pair of processes (spawning is the expensive part) checks the Communicator end to end."""
    findings = _run_two_ranks(plugin_site)
    assert [f["rank"] for f in findings] == [0, 1]
    for found in findings:
        assert found["backend"] == "gloo" and found["world_size"] == 2
        # tensor parallel, as one process computes it; float32 sums in another order: values ~10, eps 1.2e-7
        assert found["row_parallel_err"] < 1e-4
        assert found["column_parallel_err"] < 1e-4
        assert found["sequence_parallel_err"] < 1e-4
        assert found["expert_dispatch_err"] == 0.0
        assert found["broadcast_err"] == 0.0
        # float8 travels bit for bit; summing it is refused, naming the op
        assert found["fp8_all_gather_dtype"] == "torch.float8_e4m3fn"
        assert found["fp8_all_gather_bits_equal"]
        assert found["fp8_all_reduce_error"].startswith("comm.all_reduce: cannot sum torch.float8_e4m3fn")
        # the plugin's small-message kernel wins the 64 KiB class only: it served the 16-float call
        # (64 bytes), and the 256 KiB call went to the reference
        assert found["all_reduce_selection"] == [
            [SMALL_LIMIT, "sizetest.small_all_reduce"],
            [None, "reference.all_reduce"],
        ]
        assert found["small_kernel_calls"] == [64]
        assert found["size_class_results_err"] == 0.0
        assert found["compiled_err"] < 1e-5


def _fp8_block(rank: int) -> torch.Tensor:
    return (torch.randn(3, 8, generator=torch.Generator().manual_seed(20 + rank)) * 4).to(torch.float8_e4m3fn)


def _rank_findings() -> dict[str, Any]:
    """The per-rank program: tensor-parallel layers, sequence parallelism, an expert-parallel dispatch and
    float8 through a Communicator from init_distributed, compared with what one process computes."""
    comm = init_distributed(timeout=timedelta(seconds=60), dtypes=(torch.float32,))
    rank, world = comm.rank, comm.world_size
    g = torch.Generator().manual_seed(0)
    x, w_up, w_down = (
        torch.randn(5, 16, generator=g),
        torch.randn(24, 16, generator=g),
        torch.randn(16, 24, generator=g),
    )
    hidden = x @ w_up.T
    cols = slice(rank * 24 // world, (rank + 1) * 24 // world)
    local_hidden = x @ w_up[cols].T  # column-parallel: this rank's hidden features
    row_out = comm.all_reduce(local_hidden @ w_down[:, cols].T)  # row-parallel: partial sums over ranks
    gathered = comm.all_gather(local_hidden, dim=-1)
    # sequence parallel: every rank holds partial sums of 6 tokens and keeps the full sum of its 3
    partial = [torch.randn(6, 16, generator=torch.Generator().manual_seed(10 + r)) for r in range(world)]
    mine = comm.reduce_scatter(partial[rank], dim=0)
    # expert dispatch: rank r sends sends[r][j] rows to rank j
    sends = [[1, 3], [2, 0]]
    rows = [
        torch.full((sum(sends[r]), 4), float(r)) + torch.arange(sum(sends[r]))[:, None] for r in range(world)
    ]
    received = comm.all_to_all(rows[rank], [sends[j][rank] for j in range(world)], sends[rank])
    expected_received = torch.cat(
        [rows[j][sum(sends[j][:rank]) : sum(sends[j][: rank + 1])] for j in range(world)]
    )
    fp8_gathered = comm.all_gather(_fp8_block(rank))
    fp8_all = torch.cat([_fp8_block(r) for r in range(world)])
    try:
        comm.all_reduce(_fp8_block(rank))
        fp8_error = "no error"
    except ContractError as exc:
        fp8_error = str(exc)
    calls = sys.modules["anyaccel_sizetest"].CALLS
    small, large = torch.full((16,), float(rank + 1)), torch.full((64 * 1024,), float(rank + 1))
    before = len(calls)
    size_results = [comm.all_reduce(small), comm.all_reduce(large)]
    small_kernel_calls = calls[before:]

    def collectives(t: torch.Tensor) -> torch.Tensor:
        gathered = comm.all_gather(t, dim=0)  # [2 * 5, 16]
        summed = comm.reduce_scatter(gathered, dim=0) + comm.all_reduce(t)
        splits = [2, 3] if rank == 0 else [3, 2]  # rank r keeps splits[r] rows and sends the rest
        exchanged = comm.all_to_all(summed, splits, splits)
        return comm.broadcast(exchanged[:2], src=0) + exchanged[:2]

    # every comm op inside one fullgraph compile (aot_eager: Dynamo, functionalization and the fake kernels
    # without inductor's compile time), against the same calls in eager mode
    compiled = torch.compile(collectives, fullgraph=True, backend="aot_eager")
    compiled_err = (compiled(x + rank) - collectives(x + rank)).abs().max().item()
    return {
        "rank": rank,
        "world_size": world,
        "backend": comm.backend,
        "row_parallel_err": (row_out - hidden @ w_down.T).abs().max().item(),
        "column_parallel_err": (gathered - hidden).abs().max().item(),
        "sequence_parallel_err": (mine - sum(partial)[rank * 3 : (rank + 1) * 3]).abs().max().item(),
        "expert_dispatch_err": (received - expected_received).abs().max().item(),
        "broadcast_err": (comm.broadcast(x + rank, src=1) - (x + 1)).abs().max().item(),
        "fp8_all_gather_dtype": str(fp8_gathered.dtype),
        "fp8_all_gather_bits_equal": torch.equal(fp8_gathered.view(torch.uint8), fp8_all.view(torch.uint8)),
        "fp8_all_reduce_error": fp8_error,
        "all_reduce_selection": comm.selection("comm.all_reduce", torch.float32),
        "small_kernel_calls": small_kernel_calls,
        "size_class_results_err": max((r - 3.0).abs().max().item() for r in size_results),
        "compiled_err": compiled_err,
    }


if __name__ == "__main__":
    import torch.distributed as dist

    findings = _rank_findings()
    dist.destroy_process_group()
    print(json.dumps(findings))
