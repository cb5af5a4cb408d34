"""FlashInfer's pre-routed trtllm-gen fp8 block MoE. The kit's fp8_block grid has no bf16 case whose
intermediate size is whole 128-row tiles (its I=192 and I=100 cases split a tile between gate and up, which
the kernel's [up; gate] order cannot represent), so these cases come from the kit's own builder and oracle
(anyaccel.conformance.cases.moe) with I = 128 and 256, with and without expert parallelism."""

from __future__ import annotations

import pytest
import torch

from anyaccel import context
from anyaccel.conformance.cases.moe import _expert_case
from anyaccel.conformance.runner import run_case
from anyaccel.env import override
from anyaccel.ops.moe import MoESpec

from .planning import accepted, verdicts

NAME = "flashinfer.trtllm_fp8_block_moe"
CONFIGS = (
    (8, 8, 2, 256, 128, "silu", "fp8_block", 0),
    (16, 64, 4, 256, 256, "silu", "fp8_block", 0),  # expert parallel: 16 of 64 experts here
)


@pytest.mark.parametrize("cap", ["sm_100", "sm_103"])
def test_trtllm_fp8_block_moe_conforms(cap):
    with override({"ANYACCEL_EMULATE": f"cuda:{cap}"}):
        ctx = context.get()
        record = next(k for k in ctx.kernels_for("moe.experts") if k.name == NAME)
        for tokens, config in zip((37, 5), CONFIGS, strict=True):
            result = run_case(
                record, _expert_case(tokens, config, torch.bfloat16), ctx.platform, "cpu", False, {}
            )
            assert result.status == "passed", (config, result.detail)


def test_trtllm_fp8_block_moe_gates():
    """gen_trtllm_gen_fused_moe_sm100_module: the sm_100 family only (not sm_110, not sm_12x)."""
    spec = MoESpec(torch.bfloat16, 256, 8, 7168, 2048, quant="fp8_block")
    for cap in ("sm_90", "sm_110", "sm_120", "sm_121"):
        assert f"this device is {cap}" in verdicts("moe.experts", spec, cap)[NAME]
    for cap in ("sm_100", "sm_103"):
        assert verdicts("moe.experts", spec, cap)[NAME].startswith("selected")
    odd = MoESpec(torch.bfloat16, 64, 4, 256, 192, quant="fp8_block")
    assert "whole scale tiles" in verdicts("moe.experts", odd, "sm_100")[NAME]
    assert not accepted(verdicts("moe.experts", MoESpec(torch.bfloat16, 64, 4, 256, 128), "sm_100")[NAME])
