"""MATE's grouped fp8 GEMM for block-fp8 experts. The kit's fp8_block grid has no bf16 case whose sizes meet
vLLM-musa's N % 256 / K % 128 rule except its large one (which runs only on the device), so these cases come
from the kit's own builder and oracle (anyaccel.conformance.cases.moe) with H = 256 and I = 128 / 256, with
and without expert parallelism."""

from __future__ import annotations

import pytest
import torch

from anyaccel import context
from anyaccel.conformance.cases.moe import _expert_case
from anyaccel.conformance.runner import run_case
from anyaccel.env import override

NAME = "musa.mate_grouped_fp8_experts"
CONFIGS = (
    (8, 8, 2, 256, 128, "silu", "fp8_block", 0),
    (16, 64, 4, 256, 256, "gelu", "fp8_block", 0),  # expert parallel: 16 of 64 experts here
)


@pytest.mark.parametrize(("tokens", "config"), list(zip((37, 5), CONFIGS, strict=True)))
def test_grouped_fp8_experts_conform(tokens, config):
    with override({"ANYACCEL_EMULATE": "musa:mp_31"}):
        ctx = context.get()
        record = next(k for k in ctx.kernels_for("moe.experts") if k.name == NAME)
        result = run_case(
            record, _expert_case(tokens, config, torch.bfloat16), ctx.platform, "cpu", False, {}
        )
        assert result.status == "passed", (config, result.detail)
