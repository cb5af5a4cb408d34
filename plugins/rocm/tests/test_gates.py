"""Each of AITER's gates (gates.py) as data and as the reason a kernel is declined."""

from __future__ import annotations

import pytest
import torch
from anyaccel_rocm import gates
from anyaccel_rocm.kernels import supports

import anyaccel
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.comm import CommSpec
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.quant import GemmSpec
from anyaccel.platforms import rocm

GFX942 = rocm.describe(rocm.parse_capability("gfx942"), device_name="MI300X")
GFX950 = rocm.describe(rocm.parse_capability("gfx950"), device_name="MI355X")
BF16, F16 = torch.bfloat16, torch.float16


def test_fp8_dtype_per_gfx_matches_the_platform_table():
    for platform in (GFX942, GFX950):
        assert getattr(torch, platform.fp8_dtype) == gates.FP8_BY_GFX[platform.capability.name]


@pytest.mark.parametrize(
    ("gqa", "row"), [(8, 8), (4, 8), (1, 8), (16, 16), (12, 16), (10, 16), (17, None), (32, None)]
)
def test_assembly_kernel_lookup_rounds_the_gqa_ratio_up_to_a_multiple_of_8(gqa, row):
    found = gates.pa_asm_kernel("gfx942", "bf16", "bf16", gqa)
    assert (found[2] if found else None) == row


def test_prefill_engine():
    assert gates.prefill_engine("gfx942", BF16, 128, -1, 0.0) == "asm v3"
    assert gates.prefill_engine("gfx950", BF16, 128, -1, 0.0) == "asm v3"
    assert gates.prefill_engine("gfx942", F16, 128, -1, 0.0) == "ck"  # v3 is bf16 only
    assert gates.prefill_engine("gfx942", BF16, 64, -1, 0.0) == "ck"
    assert gates.prefill_engine("gfx942", BF16, 128, 512, 0.0) == "ck"  # sliding window
    assert gates.prefill_engine("gfx942", BF16, 128, -1, 30.0) == "ck"  # soft-cap
    assert gates.prefill_engine("gfx90a", BF16, 128, -1, 0.0) == "ck"


def test_prefill_declines_sinks_only_on_the_v3_path():
    v3 = AttentionSpec(BF16, 16, 2, 128, sinks=True)
    assert "sink" in supports.prefill(v3, GFX942)
    assert supports.prefill(AttentionSpec(F16, 16, 2, 128, sinks=True), GFX942) is None
    assert "multiples of 8" in supports.prefill(AttentionSpec(BF16, 16, 2, 100), GFX942)


def test_decode_reasons():
    asm = AttentionSpec(BF16, 16, 2, 128, block_size=16, kv_layout="AITER_PA_ASM")
    assert supports.decode_pa_asm(asm, GFX942) is None
    assert "GQA ratio 32" in supports.decode_pa_asm(AttentionSpec(BF16, 32, 1, 128), GFX942)
    assert "head_size=128" in supports.decode_pa_asm(AttentionSpec(BF16, 16, 2, 64), GFX942)
    fnuz = AttentionSpec(BF16, 16, 2, 128, kv_dtype=torch.float8_e4m3fnuz, kv_layout="AITER_PA_ASM_8BIT")
    assert supports.decode_pa_asm_8bit(fnuz, GFX942) is None  # fp8 rows of pa_asm.csv, 16-element packs
    assert "holds 16-bit caches (x = 8)" in supports.decode_pa_asm(fnuz, GFX942)
    assert "holds fp8 caches (x = 16)" in supports.decode_pa_asm_8bit(asm, GFX942)
    assert "float8_e4m3fn (aiter" in supports.decode_pa_asm_8bit(fnuz, GFX950)  # gfx950 computes e4m3fn
    assert "kv fp8, GQA ratio 32" in supports.decode_pa_asm_8bit(
        AttentionSpec(BF16, 32, 1, 128, kv_dtype=torch.float8_e4m3fnuz), GFX942
    )
    assert supports.write_kv_pa_asm_8bit(fnuz, GFX942) is None
    assert supports.prefill_pa_asm_8bit(fnuz, GFX942) is None
    assert "holds fp8 caches" in supports.write_kv_pa_asm_8bit(asm, GFX942)
    assert "sinks" in supports.decode_v1(AttentionSpec(BF16, 8, 1, 128, sinks=True), GFX942)
    assert "tested for [64, 128]" in supports.decode_v1(AttentionSpec(BF16, 8, 1, 96), GFX942)
    fn_cache = AttentionSpec(BF16, 8, 1, 128, kv_dtype=torch.float8_e4m3fn)
    assert "float8_e4m3fnuz" in supports.decode_v1(fn_cache, GFX942)
    assert supports.decode_v1(fn_cache, GFX950) is None


def test_experts_reasons():
    assert supports.experts(MoESpec(BF16, 8, 2, 256, 128), GFX942) is None
    assert "shuffle_weight" in supports.experts(MoESpec(BF16, 8, 2, 96, 40), GFX942)
    assert "128x128" in supports.experts(MoESpec(BF16, 8, 2, 256, 192, quant="fp8_block"), GFX942)
    assert "int4_group" in supports.experts(MoESpec(BF16, 8, 2, 256, 128, quant="int4_group"), GFX942)


def test_gemm_reasons():
    fnuz = GemmSpec(BF16, "channel", "float8_e4m3fnuz")
    assert supports.gemm_a8w8(fnuz, GFX942) is None
    assert "float8_e4m3fnuz" in supports.gemm_a8w8(GemmSpec(BF16, "channel", "float8_e4m3fn"), GFX942)
    assert supports.gemm_a8w8_blockscale(GemmSpec(F16, "block", "float8_e4m3fn"), GFX950) is None
    assert "bf16 or fp16" in supports.gemm_a8w8(GemmSpec(torch.float32, "channel", "float8_e4m3fnuz"), GFX942)


def test_custom_all_reduce_limits_and_the_gfx942_tp8_bug():
    small = 512 * 1024
    assert supports.custom_all_reduce(CommSpec(BF16, 4, small), GFX942) is None
    assert "#4855" in supports.custom_all_reduce(CommSpec(BF16, 8, small), GFX942)
    assert supports.custom_all_reduce(CommSpec(BF16, 8, small), GFX950) is None
    assert "world size 3" in supports.custom_all_reduce(CommSpec(BF16, 3, small), GFX950)
    assert "at most" in supports.custom_all_reduce(CommSpec(BF16, 2, None), GFX950)


def test_quick_all_reduce_limits():
    mib = 1024 * 1024
    assert supports.quick_all_reduce(CommSpec(F16, 2, None), GFX942) is None
    assert supports.quick_all_reduce(CommSpec(BF16, 8, 16 * mib), GFX950) is None
    assert supports.quick_all_reduce(CommSpec(F16, 2, mib), GFX942) is None  # its minimum, reached
    assert "from 1048576 bytes" in supports.quick_all_reduce(CommSpec(F16, 2, mib - 16), GFX942)
    assert "from 2097152 bytes" in supports.quick_all_reduce(CommSpec(BF16, 2, mib), GFX942)  # no fp16 cast
    assert "from 16777216 bytes" in supports.quick_all_reduce(CommSpec(F16, 8, 8 * mib), GFX942)
    assert "world size 6" in supports.quick_all_reduce(CommSpec(F16, 6, None), GFX942)
    assert "float16 and bfloat16" in supports.quick_all_reduce(CommSpec(torch.float32, 2, None), GFX942)
    gfx90a = rocm.describe(rocm.parse_capability("gfx90a"), device_name="MI250X")
    assert "gfx94*/gfx95* only" in supports.quick_all_reduce(CommSpec(F16, 2, None), gfx90a)


def test_quick_all_reduce_runs_its_exact_level_and_bf16_as_bf16():
    """The FP level is the only one whose sum is the contract's; the quantized ones are not offered."""
    assert gates.QR_LEVEL == "FP" and gates.QR_LEVELS["FP"] == 0
    assert set(gates.QR_QUANTIZED_LEVELS) | {"FP", "NONE"} == set(gates.QR_LEVELS)
    assert gates.QR_ENV == {
        "AITER_QUICK_REDUCE_QUANTIZATION": "FP",
        "AITER_QUICK_REDUCE_CAST_BF16_TO_FP16": "0",
    }


def test_quick_reduce_outranks_the_custom_all_reduce_where_both_serve(monkeypatch):
    """vLLM's order: quick reduce for the classes reaching its window, the custom all-reduce below it."""
    monkeypatch.setenv("ANYACCEL_EMULATE", "rocm:gfx942")
    mib = 1024 * 1024
    pick = {
        size: anyaccel.resolve("comm.all_reduce", CommSpec(F16, 2, size)).selected.name
        for size in (512 * 1024, 8 * mib, None)
    }
    quick = "aiter.quick_all_reduce"
    assert pick == {512 * 1024: "aiter.custom_all_reduce", 8 * mib: quick, None: quick}
    # gfx942 with 8 ranks: the custom all-reduce is excluded (#4855); fp16 quick reduce starts at 16 MiB
    small = anyaccel.resolve("comm.all_reduce", CommSpec(F16, 8, 8 * mib)).selected.name
    assert small == "reference.all_reduce"


def test_the_engine_allocates_the_assembly_layout_when_its_decode_wins(monkeypatch):
    """choose_kv_cache: bf16, head dim 128, GQA 8 -> the assembly decode and its layout (the 8-bit one for
    an fp8 cache); head dim 64 -> paged_attention_v1 on NHD."""
    from anyaccel.models.layers.attention import choose_kv_cache

    monkeypatch.setenv("ANYACCEL_EMULATE", "rocm:gfx942")
    spec = choose_kv_cache(AttentionSpec(BF16, 16, 2, 128), None)
    assert (spec.kv_layout, spec.block_size) == ("AITER_PA_ASM", 16)
    assert anyaccel.resolve("attention.prefill", spec).selected.name == "aiter.varlen_prefill_pa_asm"
    assert anyaccel.resolve("attention.write_kv", spec).selected.name == "aiter.write_kv_pa_asm"
    spec = choose_kv_cache(AttentionSpec(BF16, 8, 2, 64), None)
    assert spec.kv_layout == "NHD"
    assert anyaccel.resolve("attention.decode", spec).selected.name == "aiter.paged_decode"
    spec = choose_kv_cache(AttentionSpec(BF16, 16, 2, 128, kv_dtype=torch.float8_e4m3fnuz), None)
    assert (spec.kv_layout, spec.block_size) == ("AITER_PA_ASM_8BIT", 16)
    assert anyaccel.resolve("attention.decode", spec).selected.name == "aiter.pa_asm_decode_fp8"
    assert anyaccel.resolve("attention.prefill", spec).selected.name == "aiter.varlen_prefill_pa_asm_fp8"
    assert anyaccel.resolve("attention.write_kv", spec).selected.name == "aiter.write_kv_pa_asm_fp8"


def test_microscaling_is_gfx950s_and_each_unwired_aiter_path_has_its_source():
    """Block-scaled MFMA is gfx950's (platforms/rocm.py); AITER's MX paths are recorded with why each does
    not serve the contract (gates.MX_NOT_WIRED), so the plan keeps Triton there (golden "specs")."""
    assert "mx_scaled_mfma" in GFX950.features and "mx_scaled_mfma" not in GFX942.features
    assert {"gfx950"} == gates.MX_GFX
    assert set(gates.MX_NOT_WIRED) == {"quant.quantize_mx", "quant.mx_gemm", "moe.experts"}
    for op, reasons in gates.MX_NOT_WIRED.items():
        assert reasons and any("aiter/" in r for r in reasons), op


@pytest.mark.parametrize("quant", ["mxfp4", "mxfp8", "nvfp4"])
def test_block_scaled_experts_are_declined_with_the_reason(quant):
    spec = MoESpec(BF16, 32, 4, 2880, 2880, "swiglu_oai" if quant == "mxfp4" else "silu", quant)
    assert supports.experts(spec, GFX950) == gates.MX_EXPERTS_DECLINED[quant]
