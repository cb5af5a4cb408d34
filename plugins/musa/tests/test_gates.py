"""Every vendor gate of gates.py, seen through the dispatcher on simulated S80/S3000 (mp_21), S4000 (mp_22)
and S5000 (mp_31): what binds, and the reason for what does not."""

from __future__ import annotations

import pytest
import torch
from anyaccel_musa import gates

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.norm import NormSpec
from anyaccel.ops.quant import GemmSpec
from anyaccel.ops.rope import RopeSpec

from .planning import selected, verdicts

MATE_KERNELS = {
    "attention.prefill": ("musa.mate_prefill", AttentionSpec(torch.bfloat16)),
    "attention.decode": ("musa.mate_decode", AttentionSpec(torch.bfloat16)),
    "quant.fp8_gemm": ("musa.mate_fp8_gemm_nt", GemmSpec(torch.bfloat16, "block", n=4096, k=7168)),
    "moe.experts": (
        "musa.mate_grouped_fp8_experts",
        MoESpec(torch.bfloat16, 256, 8, 7168, 2048, quant="fp8_block"),
    ),
}


@pytest.mark.parametrize("op", sorted(MATE_KERNELS))
def test_mate_kernels_bind_on_mp31_only(op):
    name, spec = MATE_KERNELS[op]
    assert selected(verdicts(op, spec, "mp_31")[name])
    for arch in ("mp_21", "mp_22"):
        assert verdicts(op, spec, arch)[name] == f"needs musa capability mp_31; this device is {arch}"


def test_mp22_serves_attention_with_triton_and_says_why():
    got = verdicts("attention.decode", AttentionSpec(torch.bfloat16), "mp_22")
    assert selected(got["triton.paged_decode"])
    assert "mp_31" in got["musa.mate_decode"]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (AttentionSpec(torch.float32), "dtype float32 not supported"),
        (AttentionSpec(torch.bfloat16, kv_dtype=torch.float8_e4m3fn), "no fp8 attention"),
        (AttentionSpec(torch.bfloat16, head_dim=576), "head dims up to 512"),
        (AttentionSpec(torch.bfloat16, kv_layout="HND"), "reads KV layout NHD"),
        (AttentionSpec(torch.float16, sinks=True), "learnable sink in bfloat16 only"),
    ],
)
def test_attention_gates(spec, reason):
    assert reason in verdicts("attention.decode", spec, "mp_31")["musa.mate_decode"]


def test_attention_takes_any_page_size_window_softcap_and_bf16_sinks():
    spec = AttentionSpec(torch.bfloat16, block_size=64, sliding_window=128, softcap=30.0, sinks=True)
    assert selected(verdicts("attention.prefill", spec, "mp_31")["musa.mate_prefill"])
    assert selected(
        verdicts("attention.decode", AttentionSpec(torch.float16, block_size=1), "mp_31")["musa.mate_decode"]
    )


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (GemmSpec(torch.bfloat16, "channel", n=4096, k=4096), "block scales"),
        (GemmSpec(torch.float32, "block", n=4096, k=4096), "writes bfloat16 or float16"),
        (GemmSpec(torch.bfloat16, "block", "float8_e4m3fnuz", 4096, 4096), "e4m3"),
        (GemmSpec(torch.bfloat16, "block", n=4128, k=4096), "N % 64 == 0 and K % 128 == 0"),
        (GemmSpec(torch.bfloat16, "block", n=4096, k=4160), "N % 64 == 0 and K % 128 == 0"),
    ],
)
def test_fp8_gemm_gates(spec, reason):
    assert reason in verdicts("quant.fp8_gemm", spec, "mp_31")["musa.mate_fp8_gemm_nt"]


def test_fp8_gemm_divisibility_is_vllms_rule():
    assert (gates.FP8_GEMM_N_MULTIPLE, gates.FP8_GEMM_K_MULTIPLE) == (64, 128)
    ok = GemmSpec(torch.float16, "block", n=64 * 3, k=128 * 5)
    assert selected(verdicts("quant.fp8_gemm", ok, "mp_31")["musa.mate_fp8_gemm_nt"])


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (MoESpec(torch.bfloat16, 64, 4, 2048, 768), "block fp8 experts only"),
        (MoESpec(torch.float16, 64, 4, 2048, 768, quant="fp8_block"), "dtype float16 not supported"),
        (MoESpec(torch.bfloat16, 64, 4, 2048, 192, quant="fp8_block"), "N % 256 == 0 and K % 128 == 0"),
        (MoESpec(torch.bfloat16, 64, 4, 2176, 256, quant="fp8_block"), "N % 256 == 0 and K % 128 == 0"),
    ],
)
def test_grouped_moe_gates(spec, reason):
    assert reason in verdicts("moe.experts", spec, "mp_31")["musa.mate_grouped_fp8_experts"]


def test_fused_ops_per_architecture():
    """torch_musa's RMSNorm everywhere; its SwiGLU and rope from mp_22 (its tests' arch gates)."""
    norm = NormSpec(torch.bfloat16)
    rope = RopeSpec(torch.bfloat16)
    for arch in ("mp_21", "mp_22", "mp_31"):
        assert selected(verdicts("norm.rms_norm", norm, arch)["musa.fused_rms_norm"])
    assert "needs musa capability" in verdicts("rope.apply", rope, "mp_21")["musa.fused_rope"]
    assert selected(verdicts("rope.apply", rope, "mp_22")["musa.fused_rope"])
    gptj = RopeSpec(torch.bfloat16, is_neox=False)
    assert "rotate-half form only" in verdicts("rope.apply", gptj, "mp_31")["musa.fused_rope"]
