"""Registration, availability, bind-time gates, the IPEX torch-version gate and the per-batch plan of
anyaccel-xpu."""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.conformance.cases import cases_for
from anyaccel.conformance.runner import run_case
from anyaccel.ops.attention import AttentionMetadata, AttentionSpec

VENDOR = ("vllm_xpu_kernels", "intel_extension_for_pytorch")
TARGETS = ("attention", "ipex_attention", "sdpa", "elementwise", "moe", "gemm")


def test_registering_imports_no_vendor_module():
    code = (
        "import sys, anyaccel; from anyaccel import context;"
        "context.get().kernels_for('attention.decode');"
        "import anyaccel_xpu; anyaccel_xpu.anyaccel_kernels();"
        f"assert not any(m in sys.modules for m in {VENDOR!r}), 'a vendor stack was imported';"
        "assert 'anyaccel_xpu.vendor_ops' not in sys.modules;"
        f"assert not any(f'anyaccel_xpu.kernels.{{t}}' in sys.modules for t in {TARGETS!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_planning_imports_no_vendor_module():
    """A plan for bmg with every stack assumed binds vendor kernels without importing them."""
    code = (
        "import os, sys; os.environ['ANYACCEL_SIMULATE'] = 'xpu:bmg';"
        "os.environ['ANYACCEL_SIMULATE_WITH'] = 'all';"
        "import anyaccel; from anyaccel.ops.attention import AttentionSpec;"
        "res = anyaccel.resolve('attention.decode', AttentionSpec(dtype=__import__('torch').bfloat16));"
        "assert res.selected.name == 'xpu.flash_attn_decode', res.selected.name;"
        f"assert not any(m in sys.modules for m in {VENDOR!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inactive_without_xpu_active_when_simulated_or_emulated(monkeypatch):
    from anyaccel_xpu.availability import unavailable_reason

    assert "no Intel GPU stack" in (unavailable_reason() or "")
    for var in ("ANYACCEL_SIMULATE", "ANYACCEL_EMULATE"):
        monkeypatch.setenv(var, "xpu:bmg")
        assert unavailable_reason() is None
        monkeypatch.delenv(var)
    monkeypatch.setattr(torch.version, "xpu", "20250201", raising=False)
    assert unavailable_reason() is None


def _spec(**kw) -> AttentionSpec:
    base = AttentionSpec(dtype=torch.bfloat16, num_q_heads=8, num_kv_heads=2, head_dim=128, block_size=64)
    return replace(base, **kw)


def _reason(monkeypatch, target: str, op: str, kernel: str, spec) -> str:
    monkeypatch.setenv("ANYACCEL_SIMULATE", target)
    monkeypatch.setenv("ANYACCEL_SIMULATE_WITH", "all")
    anyaccel.reset()
    res = anyaccel.resolve(op, spec)
    row = next(c for c in res.candidates if c.kernel.name == kernel)
    return row.reason or ""


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (_spec(dtype=torch.float32), "dtype float32 not supported"),
        (_spec(softcap=30.0), "soft-cap"),
        (_spec(block_size=8), "pages of 16, 32 or a multiple of 64"),
        (_spec(head_dim=576), "at most 512"),
        (_spec(kv_dtype=torch.float8_e4m3fnuz), "float8_e4m3fn or float8_e5m2"),
        (_spec(kv_layout="HND"), "HND"),
    ],
)
def test_flash_attention_gates_reject_with_reasons(monkeypatch, spec, reason):
    got = _reason(monkeypatch, "xpu:bmg", "attention.decode", "xpu.flash_attn_decode", spec)
    assert reason in got, got


def test_lnl_passes_the_arch_gate_but_has_no_prebuilt_kernels(monkeypatch):
    """lnl is Xe2 (vllm-xpu-kernels' is_xe2_arch) but its wheels hold device code for pvc and bmg only; dg2
    fails the arch gate itself."""
    got = _reason(monkeypatch, "xpu:lnl", "attention.prefill", "xpu.flash_attn_prefill", _spec())
    assert "built for pvc and bmg only" in got, got
    got = _reason(monkeypatch, "xpu:dg2", "attention.prefill", "xpu.flash_attn_prefill", _spec())
    assert "needs xpu capability" in got, got


def test_int8_gemm_is_declined_with_the_reason(monkeypatch):
    from anyaccel.ops.quant import GemmSpec

    got = _reason(
        monkeypatch, "xpu:bmg", "quant.int8_gemm", "xpu.int8_gemm_unserved", GemmSpec(torch.bfloat16)
    )
    assert "no vendor int8 GEMM" in got, got


def test_torch_only_prefill_is_sdpa_and_takes_float32(monkeypatch):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "xpu:bmg")
    monkeypatch.setenv("ANYACCEL_SIMULATE_WITH", "none")
    anyaccel.reset()
    for dtype in (torch.bfloat16, torch.float32):
        assert anyaccel.resolve("attention.prefill", _spec(dtype=dtype)).selected.name == "xpu.sdpa_prefill"


# --- IPEX: chosen only where it imports against the installed torch -----------------------------------------


@pytest.fixture
def emulated_lnl(monkeypatch):
    """Lunar Lake, where vllm-xpu-kernels has no device code: IPEX or torch serve attention."""
    monkeypatch.setenv("ANYACCEL_EMULATE", "xpu:lnl")
    anyaccel.reset()
    assert context.get().platform.emulated  # detection installs the emulators
    yield importlib.import_module("intel_extension_for_pytorch")
    anyaccel.reset()


def test_ipex_built_for_another_torch_is_not_chosen(emulated_lnl):
    assert emulated_lnl.__version__.startswith("2.8.")
    res = anyaccel.resolve("attention.prefill", _spec())
    assert res.selected.name == "xpu.sdpa_prefill"
    row = next(c for c in res.candidates if c.kernel.name == "xpu.ipex_flash_attn_prefill")
    assert "built for torch 2.8.*" in row.reason and "refuses to import" in row.reason


def test_ipex_matching_torch_is_chosen_and_passes_the_kit(emulated_lnl, monkeypatch):
    monkeypatch.setattr(emulated_lnl, "__version__", torch.__version__.split("+")[0] + "+xpu")
    ctx = context.get()
    chosen = {}
    for op in ("attention.prefill", "attention.decode", "attention.write_kv"):
        chosen[op] = anyaccel.resolve(op, _spec()).selected.name
        kernel = next(k for k in ctx.kernels_for(op) if k.name == chosen[op])
        results = [run_case(kernel, case, ctx.platform, "cpu", False, {}) for case in cases_for(op)]
        assert all(r.status in ("passed", "skipped") for r in results), [
            r for r in results if r.status == "failed"
        ]
        assert any(r.status == "passed" for r in results)
    assert set(chosen.values()) == {
        "xpu.ipex_flash_attn_prefill",
        "xpu.ipex_flash_attn_decode",
        "xpu.ipex_reshape_and_cache_flash",
    }
    # IPEX's kernels need nothing of vllm-xpu-kernels: its kernel modules were never imported
    assert "anyaccel_xpu.kernels.attention" not in sys.modules


# --- the per-batch plan -------------------------------------------------------------------------------------


def test_decode_offsets_are_planned_once_per_forward(monkeypatch):
    """The decode's cumulative query offsets (0..B) are built in the plan; every layer's call passes that
    very tensor to flash_attn_varlen_func."""
    monkeypatch.setenv("ANYACCEL_EMULATE", "xpu:bmg")
    anyaccel.reset()
    spec = _spec(num_q_heads=4, num_kv_heads=2, head_dim=64, block_size=16)
    res = anyaccel.resolve("attention.decode", spec)
    assert res.selected.name == "xpu.flash_attn_decode"
    import anyaccel_xpu.kernels.attention as attention

    seen = []
    real = attention.flash_attn_varlen_func

    def spy(*args, **kwargs):
        seen.append(args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(attention, "flash_attn_varlen_func", spy)
    lens = torch.tensor([3, 20], dtype=torch.int32)
    tables = torch.tensor([[0, -1], [1, 2]], dtype=torch.int32)
    meta = AttentionMetadata(
        num_prefill_tokens=0,
        num_decode_tokens=2,
        slot_mapping=torch.zeros(2, dtype=torch.int64),
        positions=torch.zeros(2, dtype=torch.int64),
        decode_seq_lens=lens,
        decode_max_seq_len=20,
        decode_block_tables=tables,
    )
    res.plan(meta)
    planned = meta.plans["xpu.flash_attn_decode"]
    assert planned.tolist() == [0, 1, 2]
    q = torch.randn(2, 4, 64, dtype=torch.bfloat16)
    cache = torch.randn(3, 16, 2, 64, dtype=torch.bfloat16)
    for _ in range(2):  # two layers
        res.fn(q, cache, cache, tables, lens, 20, 0.125)
    assert len(seen) == 2 and all(t is planned for t in seen)
