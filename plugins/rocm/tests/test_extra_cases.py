"""Grid points of AITER's own tables that the kit's grid does not reach, built with the kit's case makers
and oracles and run by its runner on the emulated platform: fp8 caches in the gfx's fp8 (on NHD and on the
assembly decode's 8-bit layout), the assembly decode at GQA 4 (rounded up to its GQA-8 kernel) and 16, the
CK prefill with window and sinks, expert parallelism with a scattered expert map, and 128x128-block fp8
experts from e4m3fn and e4m3fnuz weights."""

from __future__ import annotations

import functools

import pytest
import torch
from anyaccel_rocm.layouts import PA_ASM, PA_ASM_8BIT

from anyaccel import context
from anyaccel.conformance.case import Case
from anyaccel.conformance.cases import attention as att
from anyaccel.conformance.cases.moe import _expert_case
from anyaccel.conformance.cases.relayout import relaid
from anyaccel.conformance.oracles import attention as oracle
from anyaccel.conformance.runner import run_case
from anyaccel.conformance.tolerance import for_dtype

F16, BF16 = torch.float16, torch.bfloat16
FP8 = {"gfx942": torch.float8_e4m3fnuz, "gfx950": torch.float8_e4m3fn}


def _decode(s: att.Shape, lens: tuple[int, ...]) -> Case:
    return Case(
        "attention.decode",
        s.label,
        s.spec(),
        att._make_decode(s, lens),
        functools.partial(oracle.decode, s.layout),
        s.tolerance(),
    )


def _prefill(s: att.Shape, new: tuple[int, ...], cached: tuple[int, ...]) -> Case:
    make = att._make_prefill(s, new, cached)
    return Case(
        "attention.prefill",
        s.label,
        s.spec(any(cached)),
        make,
        functools.partial(oracle.prefill, s.layout),
        s.tolerance(),
    )


def _write_kv(s: att.Shape, tokens: int, blocks: int, padded: int) -> Case:
    make = att._make_write_kv(s, tokens, blocks, padded)
    return Case(
        "attention.write_kv",
        s.label,
        s.spec(),
        make,
        functools.partial(oracle.write_kv, s.layout),
        for_dtype(s.dtype),
    )


def _run(kernel_name: str, case: Case) -> None:
    ctx = context.get()
    kernel = next(k for k in ctx.kernels_for(case.op) if k.name == kernel_name)
    result = run_case(kernel, case, ctx.platform, "cpu", False, {})
    assert result.status == "passed", f"{kernel_name} [{case.id}]: {result.status} {result.detail}"


@pytest.fixture(params=["gfx942", "gfx950"])
def gfx(request, monkeypatch) -> str:
    monkeypatch.setenv("ANYACCEL_EMULATE", f"rocm:{request.param}")
    return request.param


def test_fp8_cache_in_the_gfx_fp8(gfx):
    fp8 = FP8[gfx]
    _run("aiter.paged_decode", _decode(att.Shape(BF16, 16, 4, 128, 16, kv_dtype=fp8), (45, 0, 3, 77)))
    _run("aiter.write_kv", _write_kv(att.Shape(F16, 8, 2, 128, 16, kv_dtype=fp8), 29, 4, 3))
    _run("aiter.varlen_prefill", _prefill(att.Shape(BF16, 8, 2, 64, 16, kv_dtype=fp8), (6, 17), (50, 0)))


def test_decode_soft_cap_and_32_token_blocks(gfx):
    _run("aiter.paged_decode", _decode(att.Shape(F16, 8, 2, 64, 32, softcap=10.0), (70, 1, 33)))


@pytest.mark.parametrize(("dtype", "hq", "hkv"), [(F16, 16, 4), (BF16, 16, 1), (BF16, 24, 3)])
def test_assembly_decode_gqa_table(gfx, dtype, hq, hkv):
    case = relaid(_decode(att.Shape(dtype, hq, hkv, 128, 16), (40, 0, 17, 3)), PA_ASM)
    _run("aiter.pa_asm_decode", case)


@pytest.mark.parametrize(("dtype", "hq", "hkv"), [(BF16, 16, 2), (F16, 16, 4), (BF16, 12, 1)])
def test_fp8_cache_on_the_assembly_decode(gfx, dtype, hq, hkv):
    """fp8 caches in the gfx's fp8 on their 16-element packs: written, decoded with the layer's scales as
    per-token scales, and read back by the prefill for cached prefixes."""
    s = att.Shape(dtype, hq, hkv, 128, 16, kv_dtype=FP8[gfx])
    _run("aiter.pa_asm_decode_fp8", relaid(_decode(s, (40, 0, 17, 3)), PA_ASM_8BIT))
    _run("aiter.write_kv_pa_asm_fp8", relaid(_write_kv(s, 29, 4, 3), PA_ASM_8BIT))
    _run("aiter.varlen_prefill_pa_asm_fp8", relaid(_prefill(s, (6, 17), (50, 0)), PA_ASM_8BIT))


def test_prefill_on_the_ck_path_with_window_and_sinks(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "rocm:gfx942")
    _run(
        "aiter.varlen_prefill", _prefill(att.Shape(F16, 8, 2, 64, 16, window=7, sinks=True), (21, 1), (0, 30))
    )
    case = relaid(_prefill(att.Shape(BF16, 8, 2, 128, 16, window=9), (9, 4), (20, 0)), PA_ASM)
    _run("aiter.varlen_prefill_pa_asm", case)


@pytest.mark.parametrize("fp8", [torch.float8_e4m3fn, torch.float8_e4m3fnuz])
def test_block_fp8_experts_and_expert_parallelism(gfx, fp8):
    _run("aiter.fused_moe", _expert_case(37, (8, 8, 2, 256, 128, "silu", "fp8_block", 0), BF16, fp8=fp8))
    _run("aiter.fused_moe", _expert_case(19, (16, 64, 8, 64, 64, "silu", "none", 0), BF16))
    _run("aiter.fused_moe", _expert_case(5, (8, 32, 2, 128, 64, "gelu", "fp8_tensor", 0), F16, fp8=fp8))
