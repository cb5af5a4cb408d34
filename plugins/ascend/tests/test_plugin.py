"""Registration, availability, bind-time gates and the per-batch plan of anyaccel-ascend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

import anyaccel
from anyaccel.ops.attention import AttentionMetadata, AttentionSpec

EMULATE = "npu:ascend910b"


def test_registering_imports_no_torch_npu():
    code = (
        "import sys, anyaccel; from anyaccel import context;"
        "context.get().kernels_for('attention.decode');"
        "import anyaccel_ascend; anyaccel_ascend.anyaccel_kernels(); anyaccel_ascend.anyaccel_kv_layouts();"
        "assert 'torch_npu' not in sys.modules, 'torch_npu imported';"
        "targets = ('attention', 'paged', 'elementwise', 'moe', 'quant', 'linear', 'fp8', 'unserved');"
        "assert not any(f'anyaccel_ascend.kernels.{t}' in sys.modules for t in targets)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inactive_without_npu_active_when_simulated_or_emulated(monkeypatch):
    from anyaccel_ascend.availability import unavailable_reason

    assert "torch_npu is not installed" in (unavailable_reason() or "")
    for var in ("ANYACCEL_SIMULATE", "ANYACCEL_EMULATE"):
        monkeypatch.setenv(var, "npu:ascend910b")
        assert unavailable_reason() is None
        monkeypatch.delenv(var)


def _spec(**kw) -> AttentionSpec:
    base = AttentionSpec(dtype=torch.bfloat16, num_q_heads=8, num_kv_heads=2, head_dim=128, block_size=128)
    return replace(base, **kw)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (_spec(block_size=16), "reads KV blocks of 128 tokens"),
        (_spec(dtype=torch.float32), "dtype float32 not supported"),
        (_spec(softcap=5.0), "soft-cap"),
        (_spec(head_dim=72), "multiple of 16"),
        (_spec(sinks=True, head_dim=256), "value head dim <= 128"),
        (_spec(kv_dtype=torch.float8_e4m3fn), "fp8 KV"),
        (_spec(num_q_heads=130, num_kv_heads=2), "ratio of 64"),
    ],
)
def test_fia_gates_reject_with_reasons(monkeypatch, spec, reason):
    monkeypatch.setenv("ANYACCEL_SIMULATE", EMULATE)
    monkeypatch.setenv("ANYACCEL_SIMULATE_WITH", "all")
    anyaccel.reset()
    res = anyaccel.resolve("attention.decode", spec)
    row = next(c for c in res.candidates if c.kernel.name == "npu.fused_infer_attention_decode")
    assert row.reason is not None and reason in row.reason, row.reason


def test_310p_binds_the_nz_layout_and_no_bf16(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "npu:ascend310p")
    anyaccel.reset()
    nz = _spec(dtype=torch.float16, kv_layout="ASCEND_NZ")
    assert anyaccel.resolve("attention.decode", nz).selected.name == "npu.paged_attention_310p"
    assert anyaccel.resolve("attention.write_kv", nz).selected.name == "npu.reshape_and_cache_310p"
    from anyaccel.ops.norm import NormSpec

    res = anyaccel.resolve("norm.rms_norm", NormSpec(torch.bfloat16, 64))
    row = next(c for c in res.candidates if c.kernel.name == "npu.rms_norm")
    assert "no bfloat16" in (row.reason or "")


def test_plan_builds_host_lists_once_per_forward(monkeypatch):
    """The per-batch plan turns the length tensors into FIA's host lists; every layer's call reuses them
    (the emulator receives the very lists of the plan) instead of copying to the host again."""
    monkeypatch.setenv("ANYACCEL_EMULATE", EMULATE)
    anyaccel.reset()
    spec = _spec(num_q_heads=4, num_kv_heads=2, head_dim=64)
    res = anyaccel.resolve("attention.prefill", spec)
    assert res.selected.name == "npu.fused_infer_attention_prefill"
    import torch_npu

    seen = []
    real = torch_npu.npu_fused_infer_attention_score

    def spy(*args, **kwargs):
        seen.append((kwargs["actual_seq_lengths"], kwargs["actual_seq_lengths_kv"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch_npu, "npu_fused_infer_attention_score", spy)
    cu = torch.tensor([0, 3, 5], dtype=torch.int32)
    lens = torch.tensor([3, 130], dtype=torch.int32)
    tables = torch.tensor([[0, -1], [1, 2]], dtype=torch.int32)
    meta = AttentionMetadata(
        num_prefill_tokens=5,
        num_decode_tokens=0,
        slot_mapping=torch.zeros(5, dtype=torch.int64),
        positions=torch.zeros(5, dtype=torch.int64),
        cu_seqlens_q=cu,
        max_seqlen_q=3,
        prefill_seq_lens=lens,
        prefill_max_seq_len=130,
        prefill_block_tables=tables,
    )
    res.plan(meta)
    planned = meta.plans["npu.fused_infer_attention_prefill"]
    assert planned == ([3, 5], [3, 130])
    q = torch.randn(5, 4, 64, dtype=torch.bfloat16)
    kv = torch.randn(5, 2, 64, dtype=torch.bfloat16)
    cache = torch.randn(3, 128, 2, 64, dtype=torch.bfloat16)
    for _ in range(2):  # two layers
        res.fn(q, kv, kv, cache, cache, tables, cu, lens, 3, 130, 0.125)
    assert all(a is planned[0] and b is planned[1] for a, b in seen) and len(seen) == 2


def test_fp8_is_declined_with_a_reason_unless_dequantization_is_asked(monkeypatch):
    from anyaccel.ops.quant import GemmSpec

    monkeypatch.setenv("ANYACCEL_EMULATE", EMULATE)
    anyaccel.reset()
    res = anyaccel.resolve("quant.fp8_gemm", GemmSpec(torch.bfloat16, "block", n=256, k=256))
    row = next(c for c in res.candidates if c.kernel.name == "npu.fp8_dequantized_gemm")
    assert "no fp8 on ascend910b" in (row.reason or "") and "ANYACCEL_ASCEND_FP8=dequantize" in row.reason


def test_fp8_checkpoints_dequantized_at_load_pass_the_kit():
    env = {**os.environ, "ANYACCEL_ASCEND_FP8": "dequantize"}
    args = ["check", "--emulate", EMULATE, "--kernel", "npu.fp8_dequantized_gemm", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", "from anyaccel.cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["failed"] == 0 and result["passed"] > 0


@pytest.mark.parametrize("soc", ["ascend910b", "ascend910_93", "ascend310p"])
def test_every_op_but_comm_binds_npu_or_says_why(soc):
    """The plan for a machine with torch-npu: each op an npu kernel serves binds it; each other non-comm op
    (fp8, MX, int8-block activations) has an npu record whose reason names the SoC."""
    from anyaccel_ascend.gates import UNSERVED

    args = ["info", "--simulate", f"npu:{soc}", "--with", "all", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", "from anyaccel.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    ops = json.loads(done.stdout)["ops"]
    unserved = set(UNSERVED) | {"quant.fp8_gemm"}
    if soc == "ascend910b":  # A2 binds npu kernels for every other op
        assert {op for op, v in ops.items() if v["provider"] != "npu"} == unserved | {
            op for op in ops if op.startswith("comm.")
        }
    for op in unserved:
        assert ops[op]["provider"] != "npu"
        reasons = [c["reason"] for c in ops[op]["candidates"] if c["provider"] == "npu"]
        assert reasons and all(soc in r for r in reasons), (op, reasons)
