"""The known Blackwell-family dispatch gates, each checked on the simulated device and each with its source.

These are the bugs engines shipped (see README, "Gates"): trtllm-gen kernels auto-selected where they do not
exist, SM110 (Thor) missing from Blackwell checks, SM121 (DGX Spark) dropped by `== 120`. Here every gate is
data (anyaccel_cuda/gates.py, Kernel.features), and these tests pin the verdicts.
"""

from __future__ import annotations

import pytest
import torch
from anyaccel_cuda.kernels import KERNELS

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.comm import CommSpec
from anyaccel.ops.moe import MoESpec, TopKSpec
from anyaccel.ops.quant import GemmSpec

from .planning import accepted, verdicts

BF16 = torch.bfloat16
ALL = ("sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121")
HND = AttentionSpec(BF16, 16, 4, 128, kv_layout="HND")
NHD = AttentionSpec(BF16, 16, 4, 128)
MOE = MoESpec(BF16, 64, 8, 1024, 512)
BLOCK = GemmSpec(BF16, "block", n=4096, k=4096)


def test_sm110_has_no_trtllm_gen_attention():
    """FlashInfer decode.py: backend "auto" is trtllm-gen only when major == 10; XQA needs major 9/10/12;
    trtllm-gen cubins are built for the sm_100 family."""
    for op in ("attention.decode", "attention.prefill"):
        name = "flashinfer.trtllm_" + op.split(".")[1]
        assert (
            "needs cuda capability sm_100, sm_103; this device is sm_110" in verdicts(op, HND, "sm_110")[name]
        )
        assert accepted(verdicts(op, HND, "sm_100")[name])
        assert accepted(verdicts(op, HND, "sm_103")[name])


@pytest.mark.parametrize("cap", ["sm_120", "sm_121"])
def test_sm12x_has_no_trtllm_gen(cap):
    """FlashInfer #3263 / SGLang #24633, #14842: trtllm-gen fails with "Unsupported architecture" on sm_12x;
    SGLang auto-selected it there."""
    for op in ("attention.decode", "attention.prefill"):
        reason = verdicts(op, HND, cap)["flashinfer.trtllm_" + op.split(".")[1]]
        assert f"this device is {cap}" in reason


def test_sm110_has_no_cutlass_moe():
    """FlashInfer #3134, vLLM PR #40808: CUTLASS fused MoE is broken on sm_110 and was removed there."""
    assert "this device is sm_110" in verdicts("moe.experts", MOE, "sm_110")["flashinfer.cutlass_moe"]
    for cap in ("sm_90", "sm_100", "sm_103", "sm_120", "sm_121"):
        assert accepted(verdicts("moe.experts", MOE, cap)["flashinfer.cutlass_moe"]), cap


def test_sm110_has_no_deepgemm_and_sm10x_wants_ue8m0_scales():
    """DeepGEMM csrc/apis/gemm.hpp (54e2261): arch_major 9 (float scales) or 10 (UE8M0), else
    "Unsupported architecture"; layout.hpp casts float scales to UE8M0 on arch 10."""
    assert (
        "needs cuda capability sm_90..sm_109; this device is sm_110"
        in verdicts("quant.fp8_gemm", BLOCK, "sm_110")["deepgemm.fp8_gemm"]
    )
    assert "UE8M0" in verdicts("quant.fp8_gemm", BLOCK, "sm_100")["deepgemm.fp8_gemm"]
    assert verdicts("quant.fp8_gemm", BLOCK, "sm_90")["deepgemm.fp8_gemm"].startswith("selected")


def test_sm110_has_no_deepseek_routing():
    """FlashInfer fused_routing_dsv3.py: @supported_compute_capability([89, 90, 100, 103, 107, 120, 121])."""
    spec = TopKSpec(torch.float32, 64, 8, "sigmoid", True, True)
    assert "this device is sm_110" in verdicts("moe.topk", spec, "sm_110")["flashinfer.topk_deepseek"]
    assert accepted(verdicts("moe.topk", spec, "sm_121")["flashinfer.topk_deepseek"])


def test_fp8_groupwise_gemm_capabilities():
    """FlashInfer gemm_base.py: the CUTLASS groupwise GEMM is @supported_compute_capability([100, 103, 107,
    120, 121]): not sm_90, not sm_110."""
    for cap, ok in (
        ("sm_90", False),
        ("sm_100", True),
        ("sm_103", True),
        ("sm_110", False),
        ("sm_121", True),
    ):
        assert accepted(verdicts("quant.fp8_gemm", BLOCK, cap)["flashinfer.fp8_gemm_groupwise"]) == ok, cap


@pytest.mark.parametrize("cap", ALL)
def test_block_scaled_scaled_mm_only_on_sm90(cap):
    """torch ScaledBlas.cpp: 1x128 / 128x128 block scaling goes through cuBLASLt on sm_90 only."""
    reason = verdicts("quant.fp8_gemm", BLOCK, cap)["torchcuda.scaled_mm"]
    assert accepted(reason) == (cap == "sm_90"), reason
    channel = verdicts("quant.fp8_gemm", GemmSpec(BF16, "channel", n=4096, k=4096), cap)[
        "torchcuda.scaled_mm"
    ]
    assert accepted(channel), channel  # row-wise scaling: every fp8 device (sm_89+)


@pytest.mark.parametrize("cap", ["sm_120", "sm_121"])
def test_fa4_has_no_paged_kv_on_sm12x(cap):
    """flash-attn-4 4.0.0b36 interface.py: "Paged KV not supported on SM 12.0" (page_table must be None)."""
    assert "no paged KV" in verdicts("attention.decode", NHD, cap)["fa4.decode"]
    with_prefix = AttentionSpec(BF16, 16, 4, 128, prefix=True)
    assert "no paged KV" in verdicts("attention.prefill", with_prefix, cap)["fa4.prefill"]
    assert accepted(verdicts("attention.prefill", NHD, cap)["fa4.prefill"])  # new tokens only: no pages


@pytest.mark.parametrize("cap", ["sm_90", "sm_100", "sm_110", "sm_120"])
def test_fa4_fp8_kv_is_not_served(cap):
    """interface.py: FP8 only on 10.x, and only with q in fp8 too: an fp8 cache with bf16 q is declined."""
    spec = AttentionSpec(BF16, 16, 4, 128, kv_dtype=torch.float8_e4m3fn)
    assert "fp8 KV cache: FA4" in verdicts("attention.prefill", spec, cap)["fa4.prefill"]


def test_fa4_head_dims_on_blackwell():
    """interface.py _validate_head_dims: 10.x/11.x take 8..128 or 256; 9.x takes up to 256."""
    spec = AttentionSpec(BF16, 8, 8, 192)
    assert "head_dim 192" in verdicts("attention.decode", spec, "sm_100")["fa4.decode"]
    assert "head_dim 192" in verdicts("attention.decode", spec, "sm_110")["fa4.decode"]
    assert accepted(verdicts("attention.decode", spec, "sm_90")["fa4.decode"])


@pytest.mark.parametrize(("cap", "twin"), [("sm_121", "sm_120"), ("sm_103", "sm_100")])
def test_family_members_get_the_same_verdicts(cap, twin):
    """The `== 120` bug class (vLLM PR #35568, SGLang PR #18750): sm_121 must be served exactly like sm_120,
    and sm_103 like sm_100, by every kernel of the plugin, on each op's default spec and the specs above."""
    for spec_op in (
        ("attention.decode", HND),
        ("attention.decode", NHD),
        ("attention.prefill", NHD),
        ("moe.experts", MOE),
        ("quant.fp8_gemm", BLOCK),
    ):
        mine, theirs = verdicts(*spec_op, cap), verdicts(*spec_op, twin)
        for name in mine:
            if name.split(".")[0] in ("flashinfer", "fa4", "deepgemm", "torchcuda"):
                assert accepted(mine[name]) == accepted(theirs[name]), (
                    spec_op[0],
                    name,
                    mine[name],
                    theirs[name],
                )


@pytest.mark.parametrize("cap", ALL)
def test_symmetric_memory_all_reduce_where_size_tables_exist(cap):
    """vLLM all_reduce_utils.py SYMM_MEM_ALL_REDUCE_MAX_SIZES: tables for 9.0, 10.0 and 10.3 (world sizes
    2/4/6/8); elsewhere, and above a table's size, NCCL (the reference's torch.distributed path) serves."""
    spec = CommSpec(torch.bfloat16, 8, 1 << 20)
    reason = verdicts("comm.all_reduce", spec, cap)["torchcuda.symm_all_reduce"]
    assert accepted(reason) == (cap in ("sm_90", "sm_100", "sm_103")), reason
    assert (
        "world size 3"
        in verdicts("comm.all_reduce", CommSpec(torch.bfloat16, 3, 1 << 20), "sm_90")[
            "torchcuda.symm_all_reduce"
        ]
    )
    too_big = verdicts("comm.all_reduce", CommSpec(torch.bfloat16, 2, 5 << 20), "sm_103")
    assert "NCCL serves larger ones" in too_big["torchcuda.symm_all_reduce"]
    assert too_big["reference.all_reduce"].startswith("selected")


def test_every_kernel_is_gated_by_data_and_marked_emulator_verified():
    """No record without a capability set, range or feature; nothing claims hardware verification yet."""
    for k in KERNELS:
        assert k.capability is not None or k.features, k.name
        assert k.verified == "emulator", k.name
        assert k.platforms == frozenset({"cuda"}), k.name
