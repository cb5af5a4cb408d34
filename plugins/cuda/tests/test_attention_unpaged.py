"""The prefill paths that never read the paged cache: FA4 on sm_12x (no paged KV there) and torch's varlen
attention. The kit's prefill grid has no fp16/bf16 case without a cached prefix, so these cases come from
the kit's own builders and oracle (anyaccel.conformance.cases.attention) with prefix-free lengths, run
through the same runner on the emulated device."""

from __future__ import annotations

import functools

import pytest
import torch

from anyaccel import context
from anyaccel.conformance.case import Case
from anyaccel.conformance.cases.attention import Shape, _make_prefill
from anyaccel.conformance.oracles import attention as oracle
from anyaccel.conformance.runner import run_case
from anyaccel.conformance.tolerance import for_dtype
from anyaccel.env import override

BF16, F16 = torch.bfloat16, torch.float16
SHAPES = (
    (Shape(BF16, 8, 2, 128, 16), (1, 17, 40)),
    (Shape(F16, 16, 4, 64, 32, window=9), (33, 5)),
    (Shape(BF16, 8, 8, 256, 16, softcap=20.0, sinks=True), (12, 3)),  # FA4 only: torch has neither
    (Shape(F16, 4, 1, 64, 16, causal=False), (7, 21)),
)


def _case(shape: Shape, new: tuple[int, ...]) -> Case:
    return Case(
        "attention.prefill",
        f"new={'/'.join(map(str, new))} {shape.label}",
        shape.spec(),
        _make_prefill(shape, new, tuple(0 for _ in new)),
        functools.partial(oracle.prefill, shape.layout),
        for_dtype(shape.dtype),
    )


@pytest.mark.parametrize(
    ("kernel", "cap"),
    [
        ("fa4.prefill", "sm_120"),
        ("fa4.prefill", "sm_121"),
        ("torchcuda.varlen_prefill", "sm_90"),
        ("torchcuda.varlen_prefill", "sm_110"),
    ],
)
def test_unpaged_prefill(kernel, cap):
    ran = 0
    with override({"ANYACCEL_EMULATE": f"cuda:{cap}"}):
        ctx = context.get()
        record = next(k for k in ctx.kernels_for("attention.prefill") if k.name == kernel)
        for shape, new in SHAPES:
            result = run_case(record, _case(shape, new), ctx.platform, "cpu", False, {})
            if result.status == "skipped":
                assert kernel.startswith("torchcuda") and (shape.softcap or shape.sinks), result.detail
                continue
            assert result.status == "passed", (shape.label, result.detail)
            ran += 1
    assert ran >= 3
