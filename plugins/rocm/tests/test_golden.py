"""Golden plans: what each op binds to on gfx942 (MI300X/MI325X) and gfx950 (MI355X), with AITER assumed
installed and without. ANYACCEL_UPDATE_GOLDEN=1 rewrites them (review the diff). The "specs" section plans
the microscaling specs no default reaches; AITER serves none of them (gates.MX_NOT_WIRED says why)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anyaccel.conformance.golden import assert_golden_plan
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.mx import MXGemmSpec, MXQuantSpec

GOLDEN = Path(__file__).parent / "golden"
BF16 = torch.bfloat16
SPECS = {
    "mx_gemm bf16 x mxfp4": ("quant.mx_gemm", MXGemmSpec(BF16, "mxfp4", "none", 2880, 2880)),
    "mx_gemm mxfp8 x mxfp4": ("quant.mx_gemm", MXGemmSpec(BF16, "mxfp4", "mxfp8", 2880, 2880)),
    "mx_gemm mxfp8 x mxfp8": ("quant.mx_gemm", MXGemmSpec(BF16, "mxfp8", "mxfp8", 4096, 4096)),
    "quantize_mx mxfp4": ("quant.quantize_mx", MXQuantSpec(BF16, "mxfp4", 2880)),
    "quantize_mx mxfp8": ("quant.quantize_mx", MXQuantSpec(BF16, "mxfp8", 4096)),
    "experts mxfp4 gpt-oss": (
        "moe.experts",
        MoESpec(BF16, 128, 4, 2880, 2880, "swiglu_oai", "mxfp4", has_bias=True),
    ),
    "experts mxfp8": ("moe.experts", MoESpec(BF16, 128, 8, 4096, 1536, quant="mxfp8")),
}


@pytest.mark.parametrize("capability", ["gfx942", "gfx950"])
@pytest.mark.parametrize("packages", ["all", "none"])
def test_golden_plan(capability, packages):
    assert_golden_plan(
        GOLDEN / f"rocm-{capability}-{packages}.json",
        f"rocm:{capability}",
        with_=packages,
        plugins=("anyaccel-rocm",),
        specs=SPECS,
    )
