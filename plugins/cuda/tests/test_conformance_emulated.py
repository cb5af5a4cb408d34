"""The conformance kit against every kernel of the plugin, through the emulators (one item per kernel and
case). Each kernel is checked on a capability it claims, spread so that every capability family is used;
`anyaccel check --emulate cuda:<sm> --provider <p>` covers the rest (see README: "What is verified where").

Cases a kernel rejects at bind time (fp32 inputs, AMD fp8 types, layouts it does not read) are skipped with
the rejection reason, as the kit does for every plugin.
"""

from __future__ import annotations

import pytest

CONFORMANCE = pytest.mark.anyaccel_conformance


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.trtllm_decode", emulate="cuda:sm_100")
def test_trtllm_decode_sm100(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.trtllm_prefill", emulate="cuda:sm_103")
def test_trtllm_prefill_sm103(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.decode_hnd", emulate="cuda:sm_100")
def test_flashinfer_decode_hnd_sm100(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.prefill", emulate="cuda:sm_121")
def test_flashinfer_prefill_sm121(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="attention.write_kv", emulate="cuda:sm_121")
def test_flashinfer_write_kv_sm121(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(kernel="flashinfer.decode", provider="flashinfer", emulate="cuda:sm_110")
def test_flashinfer_decode_wrapper_sm110(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(kernel="flashinfer.prefill_hnd", provider="flashinfer", emulate="cuda:sm_90")
def test_flashinfer_prefill_wrapper_sm90(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="norm.rms_norm", emulate="cuda:sm_90")
def test_flashinfer_rms_norm_sm90(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="norm.add_rms_norm", emulate="cuda:sm_120")
def test_flashinfer_add_rms_norm_sm120(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="rope.apply", emulate="cuda:sm_110")
def test_flashinfer_rope_sm110(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="activation.silu_and_mul", emulate="cuda:sm_121")
def test_flashinfer_silu_sm121(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="activation.gelu_and_mul", emulate="cuda:sm_100")
def test_flashinfer_gelu_sm100(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="moe.topk", emulate="cuda:sm_121")
def test_flashinfer_topk_sm121(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="moe.experts", emulate="cuda:sm_90")
def test_flashinfer_cutlass_moe_sm90(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="quant.fp8_gemm", emulate="cuda:sm_120")
def test_flashinfer_fp8_groupwise_sm120(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="fa4", emulate="cuda:sm_100")
def test_fa4_sm100(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="fa4", op="attention.decode", emulate="cuda:sm_90")
def test_fa4_decode_sm90(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="deepgemm", emulate="cuda:sm_90")
def test_deepgemm_sm90(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="torchcuda", op="quant.fp8_gemm", emulate="cuda:sm_90")
def test_torch_scaled_mm_sm90(anyaccel_case):
    """Tensor-wise, row-wise and (sm_90 only) block-wise scales."""
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="torchcuda", op="quant.int8_gemm", emulate="cuda:sm_121")
def test_torch_int_mm_sm121(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="torchcuda", op="moe.experts", emulate="cuda:sm_103")
def test_torch_grouped_mm_sm103(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="torchcuda", op="comm.all_reduce", emulate="cuda:sm_90")
def test_symm_mem_all_reduce_sm90(anyaccel_case):
    """Two-shot all-reduce on symmetric memory across spawned ranks (gloo underneath the emulator)."""
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.mm_fp4", emulate="cuda:sm_110")
def test_flashinfer_mm_fp4_sm110(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.mm_mxfp8", emulate="cuda:sm_120")
def test_flashinfer_mm_mxfp8_sm120(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", op="quant.quantize_mx", emulate="cuda:sm_103")
def test_flashinfer_fp4_quantize_sm103(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(provider="flashinfer", kernel="flashinfer.group_gemm_mxfp8_mxfp4", emulate="cuda:sm_121")
def test_flashinfer_group_gemm_mxfp8_mxfp4_sm121(anyaccel_case):
    anyaccel_case.assert_passes()
