"""Microscaling through FlashInfer: mm_fp4 (nvfp4 x nvfp4), mm_mxfp8 (mxfp8 x mxfp8), the mxfp8 x mxfp4 group
GEMM and fp4_quantize (nvfp4).

Gates (anyaccel_cuda/gates.py, with their sources), the emulators' argument checks, and the kernels on the
kit's own case builder with the shapes its grid leaves to other kernels (N not a multiple of 128, so the
weight's swizzled scales are padded; M = 1 and 37 for the activations' padding).
"""

from __future__ import annotations

import importlib

import pytest
import torch

from anyaccel import context
from anyaccel.conformance.cases.mx import _gemm_case, _quantize_case
from anyaccel.conformance.runner import run_case
from anyaccel.env import override
from anyaccel.ops import microscaling as mx
from anyaccel.ops.mx import MXGemmSpec, MXQuantSpec
from anyaccel.ops.mx_swizzle import swizzle_128x4

from .planning import accepted, verdicts

BF16, FP16 = torch.bfloat16, torch.float16
NVFP4 = MXGemmSpec(BF16, "nvfp4", "nvfp4", 4096, 4096)
MXFP8 = MXGemmSpec(BF16, "mxfp8", "mxfp8", 4096, 4096)
A8W4 = MXGemmSpec(BF16, "mxfp4", "mxfp8", 4096, 4096)
GROUP = "flashinfer.group_gemm_mxfp8_mxfp4"
BLOCK_SCALED = ("sm_100", "sm_103", "sm_110", "sm_120", "sm_121")


@pytest.mark.parametrize("cap", BLOCK_SCALED)
def test_block_scaled_gemms_on_blackwell(cap):
    """_cutlass_gemm_fp4_requirement / _cutlass_gemm_mxfp8_requirement: 100, 103, 107, 110, 120, 121."""
    assert accepted(verdicts("quant.mx_gemm", NVFP4, cap)["flashinfer.mm_fp4"])
    assert accepted(verdicts("quant.mx_gemm", MXFP8, cap)["flashinfer.mm_mxfp8"])
    assert accepted(
        verdicts("quant.quantize_mx", MXQuantSpec(BF16, "nvfp4", 4096), cap)["flashinfer.fp4_quantize"]
    )


def test_group_gemm_is_sm10x_and_sm12x_only():
    """group_gemm_mxfp8_mxfp4_nt_groupwise: major 10 or 12 ("Unsupported device for MXFP4 group GEMM")."""
    for cap in ("sm_100", "sm_103", "sm_120", "sm_121"):
        assert accepted(verdicts("quant.mx_gemm", A8W4, cap)[GROUP]), cap
    for cap in ("sm_90", "sm_110"):
        assert f"this device is {cap}" in verdicts("quant.mx_gemm", A8W4, cap)[GROUP]
    odd = MXGemmSpec(BF16, "mxfp4", "mxfp8", 2880, 2880)  # GPT-OSS: 2880 = 22.5 x 128
    assert "K of 128" in verdicts("quant.mx_gemm", odd, "sm_100")[GROUP]


def test_sm90_has_no_block_scaled_tensor_cores():
    """Hopper has no block-scaled MMA: the feature table says so before any library gate does."""
    gemm = verdicts("quant.mx_gemm", NVFP4, "sm_90")["flashinfer.mm_fp4"]
    assert "fp4_block_scaled_mma" in gemm or "this device is sm_90" in gemm
    assert (
        "this device is sm_90"
        in verdicts("quant.quantize_mx", MXQuantSpec(BF16, "nvfp4"), "sm_90")["flashinfer.fp4_quantize"]
    )


def test_gemm_shape_and_format_gates():
    def reason(spec):
        return verdicts("quant.mx_gemm", spec, "sm_100")

    assert "multiples of 32" in reason(MXGemmSpec(BF16, "nvfp4", "nvfp4", 100, 4096))["flashinfer.mm_fp4"]
    assert "at least 128" in reason(MXGemmSpec(BF16, "mxfp8", "mxfp8", 96, 4096))["flashinfer.mm_mxfp8"]
    assert "both operands quantized" in reason(MXGemmSpec(BF16, "mxfp4"))["flashinfer.mm_fp4"]
    assert "serves mxfp8 weights" in reason(MXGemmSpec(BF16, "mxfp4", "mxfp8"))["flashinfer.mm_mxfp8"]
    assert "float32 not supported" in reason(MXGemmSpec(torch.float32, "nvfp4", "nvfp4"))["flashinfer.mm_fp4"]


@pytest.mark.parametrize("fmt", ["mxfp8", "mxfp4"])
def test_mx_quantize_not_served_for_its_rounding(fmt):
    reason = verdicts("quant.quantize_mx", MXQuantSpec(BF16, fmt), "sm_100")["flashinfer.fp4_quantize"]
    assert "rounds the e8m0 scale up" in reason


@pytest.fixture
def fi():
    with override({"ANYACCEL_EMULATE": "cuda:sm_100"}):
        yield importlib.import_module("anyaccel_cuda.emulators.flashinfer")


def _nvfp4_operands(rows: int, k: int):
    x = torch.randn(rows, k)
    glob = (x.abs().amax() / (6 * 448)).reshape(1)
    q, s = mx.quantize(mx.NVFP4, x, glob)
    return q, s, glob


def test_mm_fp4_checks(fi):
    a, sa, _ = _nvfp4_operands(4, 64)
    w, sw, _ = _nvfp4_operands(64, 64)
    sa, sw = swizzle_128x4(sa), swizzle_128x4(sw)
    alpha = torch.ones(1)
    with pytest.raises(ValueError, match="mxfp4 only supports block_size = 32"):
        fi.mm_fp4(a, w.T, sa, sw.T, alpha, BF16, block_size=16, backend="cutlass", use_nvfp4=False)
    with pytest.raises(ValueError, match="Only cudnn and auto"):
        fi.mm_fp4(a, w.T, sa, sw.T, alpha, BF16, block_size=32, backend="cutlass", use_nvfp4=False)
    with pytest.raises(ValueError, match="Unsupported output dtype"):
        fi.mm_fp4(a, w.T, sa, sw.T, alpha, torch.float32, backend="cutlass")
    with pytest.raises(ValueError, match="K dimension mismatch"):
        fi.mm_fp4(a, w, sa, sw.T, alpha, BF16, backend="cutlass")
    with pytest.raises(ValueError, match="swizzled scale bytes"):
        fi.mm_fp4(a, w.T, sa[:, :2].contiguous(), sw.T, alpha, BF16, backend="cutlass")
    with pytest.raises(NotImplementedError):
        fi.mm_fp4(a, w.T, sa, sw.T, alpha, BF16, backend="trtllm")
    w_odd, sw_odd, _ = _nvfp4_operands(48, 64)
    with pytest.raises(ValueError, match="n to be divisible by 32"):
        fi.mm_fp4(a, w_odd.T, sa, swizzle_128x4(sw_odd).T, alpha, BF16, backend="cutlass")
    with (
        override({"ANYACCEL_EMULATE": "cuda:sm_90"}),
        pytest.raises(ValueError, match="compute capability 90"),
    ):
        fi.mm_fp4(a, w.T, sa, sw.T, alpha, BF16, backend="cutlass")


def test_mm_mxfp8_checks(fi):
    a, sa = mx.quantize(mx.MXFP8, torch.randn(3, 128))
    w, sw = mx.quantize(mx.MXFP8, torch.randn(128, 128))
    flat_a, flat_w = swizzle_128x4(sa).reshape(-1), swizzle_128x4(sw).reshape(-1)
    with pytest.raises(ValueError, match="1D 128x4-swizzled"):
        fi.mm_mxfp8(a, w.T, sa, sw, backend="cutlass")
    small, small_s = mx.quantize(mx.MXFP8, torch.randn(64, 128))
    with pytest.raises(ValueError, match="n >= 128"):
        fi.mm_mxfp8(a, small.T, flat_a, swizzle_128x4(small_s).reshape(-1), backend="cutlass")
    out = fi.mm_mxfp8(a, w.T, flat_a, flat_w, out_dtype=FP16, backend="cutlass")
    want = mx.dequantize(mx.MXFP8, a, sa) @ mx.dequantize(mx.MXFP8, w, sw).T
    torch.testing.assert_close(out.float(), want, rtol=1e-2, atol=1e-2)


def test_group_gemm_checks(fi):
    gemm = importlib.import_module("anyaccel_cuda.emulators.flashinfer.gemm")  # flashinfer.gemm exports it
    a, sa = mx.quantize(mx.MXFP8, torch.randn(6, 128))
    w, sw = mx.quantize(mx.MXFP4, torch.randn(16, 128))
    sa, sw = swizzle_128x4(sa), swizzle_128x4(sw).unsqueeze(0)
    with pytest.raises(ValueError, match="multiple of 4"):
        gemm.group_gemm_mxfp8_mxfp4_nt_groupwise(
            a, w.unsqueeze(0), sa, sw, torch.tensor([0, 6], dtype=torch.int32)
        )
    padded = torch.cat([a, a[:2]])
    indptr = torch.tensor([0, 8], dtype=torch.int32)
    with pytest.raises(ValueError, match="tile_n"):
        gemm.group_gemm_mxfp8_mxfp4_nt_groupwise(padded, w.unsqueeze(0), sa, sw, indptr, tile_n=32)
    with override({"ANYACCEL_EMULATE": "cuda:sm_110"}), pytest.raises(ValueError, match="Unsupported device"):
        gemm.group_gemm_mxfp8_mxfp4_nt_groupwise(padded, w.unsqueeze(0), sa, sw, indptr)


def test_fp4_quantize_recipes(fi):
    """NVFP4 matches the contract's scales on ordinary data; the UE8M0 (MXFP4) recipe rounds the scale up,
    where OCP's floor rule (the contract's) keeps the smaller exponent and saturates: amax 7 in a block."""
    x = torch.randn(5, 64, dtype=BF16)
    glob = (x.float().abs().amax() / (6 * 448)).reshape(1)
    q, sf = fi.fp4_quantize(
        x, glob, 16, is_sf_swizzled_layout=False, is_global_scale_inversed=True, nvfp4_4over6=None
    )
    _, want = mx.quantize(mx.NVFP4, x, glob)
    assert torch.equal(sf.view(torch.float8_e4m3fn).float(), want.float())
    assert q.shape == (5, 32) and q.dtype == torch.uint8
    block = torch.zeros(1, 32, dtype=BF16)
    block[0, 0] = 7.0
    _, ue8m0 = fi.fp4_quantize(block, None, 32, sf_use_ue8m0=True, is_sf_swizzled_layout=False)
    _, ocp = mx.quantize(mx.MXFP4, block)
    assert int(ue8m0[0, 0]) == 128 and int(ocp[0, 0]) == 127
    _, swizzled = fi.fp4_quantize(x, glob, 16, is_global_scale_inversed=True)
    assert swizzled.shape == (128, 4)
    with override({"ANYACCEL_EMULATE": "cuda:sm_90"}), pytest.raises(RuntimeError, match="SM100 or newer"):
        fi.fp4_quantize(x, glob, 16)


GEMM_CASES = (  # (m, n, k, act, weight, dtype, bias)
    (37, 160, 96, "nvfp4", "nvfp4", FP16, True),
    (1, 32, 64, "nvfp4", "nvfp4", BF16, False),
    (37, 160, 128, "mxfp8", "mxfp8", BF16, True),
    (1, 256, 416, "mxfp8", "mxfp8", FP16, False),
    (37, 40, 256, "mxfp8", "mxfp4", BF16, True),
    (2, 136, 128, "mxfp8", "mxfp4", FP16, False),
)
NAMES = {"nvfp4": "flashinfer.mm_fp4", "mxfp8": "flashinfer.mm_mxfp8", "mxfp4": GROUP}


@pytest.mark.parametrize("cap", ["sm_100", "sm_121"])
def test_mx_kernels_conform_on_padded_shapes(cap):
    with override({"ANYACCEL_EMULATE": f"cuda:{cap}"}):
        ctx = context.get()
        records = {k.name: k for op in ("quant.mx_gemm", "quant.quantize_mx") for k in ctx.kernels_for(op)}
        for m, n, k, act, weight, dtype, bias in GEMM_CASES:
            result = run_case(
                records[NAMES[weight]],
                _gemm_case(m, n, k, act, weight, dtype, bias),
                ctx.platform,
                "cpu",
                False,
                {},
            )
            assert result.status == "passed", (m, n, k, weight, result.detail)
        for m, k, dtype in ((1, 16, BF16), (130, 48, FP16)):
            case = _quantize_case(m, k, dtype, "nvfp4")
            result = run_case(records["flashinfer.fp4_quantize"], case, ctx.platform, "cpu", False, {})
            assert result.status == "passed", (m, k, result.detail)
