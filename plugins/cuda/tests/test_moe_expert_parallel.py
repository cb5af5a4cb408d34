"""Expert parallelism through cutlass_fused_moe's ep_size / ep_rank (FlashInfer 0.7.4 fused_moe/core.py;
csrc cutlass_fused_moe_kernels.cuh: rank r holds experts r * E ... r * E + E - 1, other ids add nothing).

Two ranks are emulated in one process: each holds part of the experts and gets the contract's expert_map for
its part; the sum of the two outputs (what the caller's all-reduce makes) must match the float64 reference
over all experts. Contiguous placements reach the kernel as ep_size / ep_rank with the global ids untouched;
others through a per-map id table (rank 0 of 2, non-local pairs sent to rank 1's range).
Emulation checks the mapping, not the CUTLASS kernel."""

from __future__ import annotations

import importlib

import pytest
import torch

from anyaccel import context
from anyaccel.conformance.oracles import moe as oracle
from anyaccel.conformance.runner import with_prepared_weights
from anyaccel.dispatch import instantiate
from anyaccel.env import override
from anyaccel.ops.moe import MoESpec

from .planning import accepted, verdicts

NAME = "flashinfer.cutlass_moe"
E_GLOBAL, E, K, H, INTER, T = 8, 4, 2, 64, 32, 19
BF16 = torch.bfloat16


@pytest.fixture
def emulated():
    with override({"ANYACCEL_EMULATE": "cuda:sm_100"}):
        ctx = context.get()
        _ = ctx.platform  # detecting the emulated platform installs the emulators
        yield ctx, importlib.import_module("anyaccel_cuda.moe_flashinfer")


def _map(held: list[int]) -> torch.Tensor:
    expert_map = torch.full((E_GLOBAL,), -1, dtype=torch.int32)
    expert_map[torch.tensor(held)] = torch.arange(len(held), dtype=torch.int32)
    return expert_map


def test_placements_become_ep_size_and_rank(emulated):
    _, moe = emulated
    assert moe.expert_parallel_args(_map([4, 5, 6, 7]), E) == (None, 2, 1)
    assert moe.expert_parallel_args(_map([0, 1]), 2)[1:] == (4, 0)
    table, ep_size, ep_rank = moe.expert_parallel_args(_map([7, 2, 5, 0]), E)
    assert (ep_size, ep_rank) == (2, 0)
    assert table is not None and table.tolist() == [3, 4, 1, 4, 4, 2, 4, 0]
    # a contiguous range that does not start at a multiple of E is not one rank's ep_rank range
    table, *_ = moe.expert_parallel_args(_map([2, 3, 4, 5]), E)
    assert table is not None and table.tolist() == [4, 4, 0, 1, 2, 3, 4, 4]


@pytest.mark.parametrize("ranks", [([0, 1, 2, 3], [4, 5, 6, 7]), ([6, 1, 3, 4], [0, 7, 2, 5])])
def test_two_ranks_sum_to_the_reference(emulated, monkeypatch, ranks):
    ctx, moe = emulated
    g = torch.Generator().manual_seed(5)
    hidden = torch.randn(T, H, generator=g).to(BF16)
    w13 = (torch.randn(E_GLOBAL, 2 * INTER, H, generator=g) * H**-0.5).to(BF16)
    w2 = (torch.randn(E_GLOBAL, H, INTER, generator=g) * INTER**-0.5).to(BF16)
    ids = torch.stack([torch.randperm(E_GLOBAL, generator=g)[:K] for _ in range(T)]).to(torch.int32)
    weights = torch.softmax(torch.randn(T, K, generator=g), -1)
    calls: list[tuple[int, int]] = []
    real = moe.cutlass_fused_moe

    def spy(*args, **kwargs):
        calls.append((kwargs["ep_size"], kwargs["ep_rank"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(moe, "cutlass_fused_moe", spy)
    spec = MoESpec(BF16, E, K, H, INTER, expert_parallel=True)
    record = next(k for k in ctx.kernels_for("moe.experts") if k.name == NAME)
    fn = instantiate(record, spec, ctx.platform)
    total = torch.zeros(T, H)
    for held in ranks:
        args = (hidden, w13[held], w2[held], weights, ids)
        args, kwargs = with_prepared_weights(
            ctx.op("moe.experts"), record, spec, args, {"expert_map": _map(held)}
        )
        total += fn(*args, **kwargs).float()
    want = oracle.experts(hidden.double(), w13.double(), w2.double(), weights.double(), ids)
    torch.testing.assert_close(total.double(), want, atol=2e-2, rtol=2e-2)
    contiguous = ranks[0] == [0, 1, 2, 3]
    assert calls == ([(2, 0), (2, 1)] if contiguous else [(2, 0), (2, 0)])


def test_cutlass_moe_takes_every_placement():
    for placement in ("contiguous", "any"):
        spec = MoESpec(BF16, 16, 8, 1024, 512, expert_parallel=True, expert_placement=placement)
        assert accepted(verdicts("moe.experts", spec, "sm_100")[NAME]), placement
        assert "this device is sm_110" in verdicts("moe.experts", spec, "sm_110")[NAME]
