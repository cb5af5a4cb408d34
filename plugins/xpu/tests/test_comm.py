"""Communication on Intel GPUs is the reference collectives over the platform's dist backend, xccl, bound
through the Communicator (vllm-xpu-kernels offers no collective of its own). On an emulated Battlemage the
platform names xccl while processes really join over gloo, and the bound collectives pass the kit's
two-rank cases (spawned by the kit, which inherits this emulated platform)."""

from __future__ import annotations

import pytest

import anyaccel
from anyaccel import context
from anyaccel.comm import Communicator
from anyaccel.conformance.cases import cases_for
from anyaccel.conformance.runner import run_case


@pytest.mark.slow
def test_collectives_over_xccl_pass_the_kit(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "xpu:bmg")
    anyaccel.reset()
    ctx = context.get()
    assert (ctx.platform.dist_backend, ctx.platform.torch_dist_backend) == ("xccl", "gloo")
    assert Communicator().world_size == 1  # no group: a single rank passes tensors through
    for op in ("comm.all_reduce", "comm.all_gather"):
        kernel = next(k for k in ctx.kernels_for(op) if k.provider == "reference")
        case = next(c for c in cases_for(op) if c.world_size == 2)
        result = run_case(kernel, case, ctx.platform, "cpu", False, {})
        assert result.status == "passed", result.detail
