"""Golden plans: the kernel each op binds to (for its default spec) on every claimed capability, with every
package assumed installed and with none. A change of selection shows up as a diff of tests/golden/*.json;
rewrite them with ANYACCEL_UPDATE_GOLDEN=1 and review the diff like code. The "specs" section plans the
microscaling specs no default reaches (quantized activations, nvfp4, GPT-OSS's MXFP4 experts)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anyaccel.conformance.golden import assert_golden_plan
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.mx import MXGemmSpec, MXQuantSpec

GOLDEN = Path(__file__).parent / "golden"
CAPABILITIES = ("sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121")
BF16 = torch.bfloat16
SPECS = {
    "mx_gemm nvfp4 x nvfp4": ("quant.mx_gemm", MXGemmSpec(BF16, "nvfp4", "nvfp4", 4096, 4096)),
    "mx_gemm mxfp8 x mxfp8": ("quant.mx_gemm", MXGemmSpec(BF16, "mxfp8", "mxfp8", 4096, 4096)),
    "mx_gemm mxfp8 x mxfp4": ("quant.mx_gemm", MXGemmSpec(BF16, "mxfp4", "mxfp8", 4096, 4096)),
    "mx_gemm bf16 x nvfp4": ("quant.mx_gemm", MXGemmSpec(BF16, "nvfp4", "none", 4096, 4096)),
    "quantize_mx nvfp4": ("quant.quantize_mx", MXQuantSpec(BF16, "nvfp4", 4096)),
    "quantize_mx mxfp8": ("quant.quantize_mx", MXQuantSpec(BF16, "mxfp8", 4096)),
    "experts mxfp4 gpt-oss": (
        "moe.experts",
        MoESpec(BF16, 32, 4, 2880, 2880, "swiglu_oai", "mxfp4", has_bias=True),
    ),
    "experts nvfp4": ("moe.experts", MoESpec(BF16, 128, 8, 4096, 1536, quant="nvfp4")),
}


@pytest.mark.parametrize("packages", ["all", "none"])
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_golden_plan(capability, packages):
    assert_golden_plan(
        GOLDEN / f"cuda-{capability}-{packages}.json",
        f"cuda:{capability}",
        with_=packages,
        plugins=("anyaccel-cuda",),
        specs=SPECS,
    )
