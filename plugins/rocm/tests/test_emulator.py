"""The AITER emulator is as strict as AITER: the tile order of shuffle_weight, the x-packed assembly
layout, the lookup tables and the fp8 dtype per gfx. A kernel that skips its weight preparation or writes
the wrong layout fails the kit."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch

from anyaccel import context
from anyaccel.conformance.cases.moe import _expert_case
from anyaccel.conformance.runner import run_case


@pytest.fixture
def aiter(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "rocm:gfx942")
    assert context.get().platform.emulated  # detection installs the emulators
    return importlib.import_module("aiter")


def test_shuffle_weight_is_aiters_tile_order(aiter):
    """Element (n, k) of a bf16 [N, K] weight lands where AITER's (16, 16) layout puts it: 16-row tiles by
    32-column tiles, each tile stored as 4 packs of 8 columns, each pack's 16 rows in turn."""
    from aiter.ops.shuffle import shuffle_weight

    n, k = 32, 64
    w = torch.arange(n * k, dtype=torch.float32).view(n, k).to(torch.bfloat16)
    flat = shuffle_weight(w, (16, 16)).reshape(-1).float()
    for row, col in [(0, 0), (1, 0), (0, 8), (17, 40), (31, 63)]:
        tile = (row // 16) * (k // 32) + col // 32
        pack, lane, elem = (col % 32) // 8, row % 16, col % 8
        assert flat[tile * 512 + pack * 128 + lane * 8 + elem] == w[row, col].float()


def test_shuffle_rejects_partial_tiles(aiter):
    from aiter.ops.shuffle import shuffle_weight

    with pytest.raises(AssertionError):
        shuffle_weight(torch.zeros(16, 48, dtype=torch.bfloat16), (16, 16))


def test_unprepared_experts_fail_the_kit(aiter):
    """fused_moe reads shuffled tiles: without the prepare hook the kit's oracle comparison fails."""
    ctx = context.get()
    kernel = next(k for k in ctx.kernels_for("moe.experts") if k.name == "aiter.fused_moe")
    case = _expert_case(37, (8, 8, 2, 128, 64, "silu", "none", 0), torch.bfloat16)
    assert run_case(kernel, case, ctx.platform, "cpu", False, {}).status == "passed"
    unprepared = dataclasses.replace(kernel, prepare=None)
    result = run_case(unprepared, case, ctx.platform, "cpu", False, {})
    assert result.status == "failed" and "tolerance" in result.detail


def test_assembly_decode_tables(aiter):
    q = torch.zeros(2, 16, 128, dtype=torch.bfloat16)
    k = torch.zeros(3, 2, 16, 16, 8, dtype=torch.bfloat16)
    v = torch.zeros(3, 2, 2, 128, 8, dtype=torch.bfloat16)
    table, lens = torch.zeros(2, 1, dtype=torch.int32), torch.ones(2, dtype=torch.int32)
    aiter.pa_fwd_asm(q, k, v, table, lens, table.stride(0))  # GQA 8, 16-token blocks: a kernel exists
    with pytest.raises(RuntimeError, match="head_size=128"):
        aiter.pa_fwd_asm(q[..., :64], k[:, :, :8], v[..., :64, :], table, lens, 1)
    with pytest.raises(RuntimeError, match="cannot get heuristic kernel"):  # GQA 32
        aiter.pa_fwd_asm(torch.zeros(2, 32, 128, dtype=torch.bfloat16), k[:, :1], v[:, :1], table, lens, 1)
    with pytest.raises(RuntimeError, match="block_size/x"):  # an NHD-style value cache is not the layout
        aiter.pa_fwd_asm(q, k, torch.zeros(3, 2, 16, 128, dtype=torch.bfloat16), table, lens, 1)
    with pytest.raises(RuntimeError, match="unsupport Q dtype"):
        aiter.pa_fwd_asm(q.float(), k, v, table, lens, 1)


def test_assembly_decode_of_fp8_caches_reads_16_element_packs_and_per_token_scales(aiter):
    fp8 = torch.float8_e4m3fnuz  # gfx942's
    q = torch.zeros(2, 16, 128, dtype=torch.bfloat16)
    k = torch.zeros(3, 2, 8, 16, 16, dtype=fp8)
    v = torch.zeros(3, 2, 1, 128, 16, dtype=fp8)
    table, lens = torch.zeros(2, 1, dtype=torch.int32), torch.ones(2, dtype=torch.int32)
    scales = torch.ones(3, 2, 16)
    aiter.pa_fwd_asm(q, k, v, table, lens, 1, K_QScale=scales, V_QScale=scales)
    with pytest.raises(RuntimeError, match="K_QScale/V_QScale"):
        aiter.pa_fwd_asm(q, k, v, table, lens, 1)
    with pytest.raises(RuntimeError, match=r"K_QScale must be contiguous float32 \[3, 2, 16\]"):  # per-tensor
        aiter.pa_fwd_asm(q, k, v, table, lens, 1, K_QScale=torch.ones(1), V_QScale=scales)
    with pytest.raises(RuntimeError, match="D/x"):  # fp8 in the 16-bit layout's 8-element packs
        aiter.pa_fwd_asm(q, k.view(3, 2, 16, 16, 8), v.view(3, 2, 2, 128, 8), table, lens, 1)
    with pytest.raises(RuntimeError, match="unsupport K dtype"):  # the other gfx's fp8
        aiter.pa_fwd_asm(q, k.view(torch.float8_e4m3fn), v, table, lens, 1, K_QScale=scales, V_QScale=scales)


def test_paged_attention_v1_checks(aiter):
    q = torch.zeros(2, 8, 64, dtype=torch.float16)
    cache = torch.zeros(4, 16, 2, 64, dtype=torch.float16)
    table, lens = torch.zeros(2, 2, dtype=torch.int32), torch.full((2,), 20, dtype=torch.int32)
    args = (
        q,
        cache,
        cache,
        0.125,
        table,
        torch.arange(3, dtype=torch.int32),
        lens,
        20,
        None,
        "auto",
        "NHD",
        0.0,
    )
    with pytest.raises(ValueError, match="workspace_buffer is too small"):
        aiter.paged_attention_v1(torch.empty_like(q), torch.empty(16, dtype=torch.uint8), *args, None, None)
    with pytest.raises(ValueError, match="Unsupported data type"):
        aiter.paged_attention_v1(
            q.float(), torch.empty(1 << 16, dtype=torch.uint8), q.float(), *args[1:], None, None
        )


@pytest.mark.parametrize(("gfx", "fp8"), [("gfx942", torch.float8_e4m3fnuz), ("gfx950", torch.float8_e4m3fn)])
def test_fp8_dtype_follows_the_gfx(monkeypatch, gfx, fp8):
    monkeypatch.setenv("ANYACCEL_EMULATE", f"rocm:{gfx}")
    assert context.get().platform.emulated
    aiter = importlib.import_module("aiter")
    assert aiter.dtypes.fp8 == fp8
    other = torch.float8_e4m3fn if fp8 == torch.float8_e4m3fnuz else torch.float8_e4m3fnuz
    a = torch.zeros(4, 128).to(other)
    with pytest.raises(AssertionError, match="must be"):
        aiter.gemm_a8w8(a, a, torch.ones(4, 1), torch.ones(4, 1))
    out = aiter.gemm_a8w8(a.to(fp8), a.to(fp8), torch.ones(4, 1), torch.ones(4, 1))
    assert out.dtype == torch.bfloat16


def test_emulator_is_installed_only_when_emulating():
    import sys

    assert not context.get().platform.emulated
    assert "aiter" not in sys.modules


def test_varlen_checks_and_the_engine_aiter_takes(aiter):
    from anyaccel_rocm.emulators.aiter import mha

    cu = torch.tensor([0, 5], dtype=torch.int32)
    q = torch.randn(5, 4, 128).to(torch.bfloat16)
    aiter.flash_attn_varlen_func(q, q[:, :2], q[:, :2], cu, cu, 5, 5, causal=True)
    assert mha.last_engine == "asm v3"
    aiter.flash_attn_varlen_func(q, q[:, :2], q[:, :2], cu, cu, 5, 5, causal=True, window_size=(3, 0, 0))
    assert mha.last_engine == "ck"
    with pytest.raises(RuntimeError, match="multiple of 8"):
        aiter.flash_attn_varlen_func(q[..., :100], q[:, :2, :100], q[:, :2, :100], cu, cu, 5, 5)
    with pytest.raises(RuntimeError, match="must divide"):
        aiter.flash_attn_varlen_func(q, q[:, :3], q[:, :3], cu, cu, 5, 5)


def _quick_reduce(world_size: int, cast: bool):
    """An enabled emulated QuickAllReduce at the FP level without a process group (construction needs
    one; these checks do not)."""
    from aiter.dist.device_communicators.quick_all_reduce import QuickAllReduce, QuickReduceRegime

    qr = QuickAllReduce.__new__(QuickAllReduce)
    qr.disabled, qr.world_size, qr.use_fp16_kernels = False, world_size, int(cast)
    qr.qr_quant_level, qr.qr_max_size = QuickReduceRegime.FP, 2**31
    return qr


def test_quick_reduce_size_rule_is_aiters(aiter):
    from aiter.dist.device_communicators.quick_all_reduce import QuickAllReduce
    from anyaccel_rocm import gates

    fp_column = {key: sizes[0] for key, sizes in QuickAllReduce._QR_MIN_SIZE.items()}
    assert fp_column == gates.QR_MIN_BYTES
    qr = _quick_reduce(2, cast=False)
    mib = 1024 * 1024
    assert qr.should_quick_allreduce(torch.empty(mib // 2, dtype=torch.float16))
    assert not qr.should_quick_allreduce(torch.empty(mib // 2 - 8, dtype=torch.float16))  # below 1 MiB
    assert not qr.should_quick_allreduce(torch.empty(mib // 2 + 1, dtype=torch.float16))  # not 16-byte
    assert not qr.should_quick_allreduce(torch.empty(mib, dtype=torch.float32))
    assert not qr.should_quick_allreduce(torch.empty(mib // 2, dtype=torch.bfloat16))  # bf16 from 2 MiB
    assert _quick_reduce(2, cast=True).should_quick_allreduce(torch.empty(mib // 2, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="dtype mismatch"):
        qr.quick_all_reduce(torch.empty(8, dtype=torch.float16), out=torch.empty(8, dtype=torch.bfloat16))
    with pytest.raises(RuntimeError, match="float16 and bfloat16"):
        qr.quick_all_reduce(torch.empty(8, dtype=torch.float32))


def test_quick_reduce_rounds_each_partial_sum_and_clamps_fp16_overflow_on_gfx942(aiter):
    from aiter.dist.device_communicators.quick_all_reduce import QuickAllReduce

    a = torch.tensor([1.0, 60000.0, float("inf")], dtype=torch.float16)
    b = torch.tensor([2.0**-11, 60000.0, 1.0], dtype=torch.float16)
    got = QuickAllReduce._add(a, b)  # 1 + 2^-11 is a tie: rounds to even (1.0); overflow clamps; inf stays
    assert got.tolist() == [1.0, 65504.0, float("inf")]
