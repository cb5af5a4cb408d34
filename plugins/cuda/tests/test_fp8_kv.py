"""fp8 (e4m3fn) KV caches through trtllm-gen, and why FA4 declines them.

Sources (gates.py): FlashInfer's trtllm-gen dtype triples from its own tests (tests/attention/
test_trtllm_gen_attention_decode.py, _prefill.py): decode has fp16/bf16 q over an e4m3 cache, context has
e4m3 q only; the fused scales as vLLM's FlashInfer backend passes them (bmm1 = q_scale * k_scale * softmax
scale, bmm2 = v_scale). FA4 (flash_attn/cute/interface.py 4.0.0b36): fp8 only on 10.x, q/k/v one dtype,
and no descale argument on flash_attn_varlen_func.
Emulation checks our side (dtypes passed, scales, q quantization), not trtllm-gen's own fp8 arithmetic.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib

import pytest
import torch

from anyaccel import context
from anyaccel.env import override
from anyaccel.ops.attention import AttentionSpec

from .planning import accepted, verdicts

BF16, F16, E4M3 = torch.bfloat16, torch.float16, torch.float8_e4m3fn
FP8_HND = AttentionSpec(BF16, 16, 4, 128, kv_dtype=E4M3, kv_layout="HND")
FP8_NHD = AttentionSpec(BF16, 16, 4, 128, kv_dtype=E4M3)


@pytest.fixture
def fi():
    with override({"ANYACCEL_EMULATE": "cuda:sm_100"}):
        yield importlib.import_module("anyaccel_cuda.emulators.flashinfer")


@pytest.fixture
def trtllm():
    """anyaccel_cuda.attention.trtllm, importable only where flashinfer is (here: its emulator)."""
    with override({"ANYACCEL_EMULATE": "cuda:sm_100"}):
        _ = context.get().platform  # detecting the emulated platform installs the emulators
        yield importlib.import_module("anyaccel_cuda.attention.trtllm")


@pytest.mark.parametrize("cap", ["sm_100", "sm_103"])
def test_trtllm_gen_serves_e4m3fn_caches_on_sm10x(cap):
    for op in ("attention.decode", "attention.prefill"):
        reason = verdicts(op, FP8_HND, cap)["flashinfer.trtllm_" + op.split(".")[1]]
        assert reason.startswith("selected"), reason


def test_trtllm_gen_fp8_limits():
    """e4m3fnuz is AMD's format; the fp8 kernels are exercised for head dims 128 and 256 only."""
    fnuz = AttentionSpec(BF16, 16, 4, 128, kv_dtype=torch.float8_e4m3fnuz, kv_layout="HND")
    assert "e4m3fnuz" in verdicts("attention.decode", fnuz, "sm_100")["flashinfer.trtllm_decode"]
    d64 = AttentionSpec(BF16, 16, 4, 64, kv_dtype=E4M3, kv_layout="HND")
    assert (
        "head_dim 64 with an fp8 KV cache"
        in verdicts("attention.prefill", d64, "sm_100")["flashinfer.trtllm_prefill"]
    )
    assert accepted(
        verdicts("attention.decode", AttentionSpec(BF16, 16, 4, 64, kv_layout="HND"), "sm_100")[
            "flashinfer.trtllm_decode"
        ]
    )


def test_fa4_declines_fp8_caches_with_the_reason():
    assert "sm_10x only, not sm_90" in verdicts("attention.prefill", FP8_NHD, "sm_90")["fa4.prefill"]
    reason = verdicts("attention.decode", FP8_NHD, "sm_100")["fa4.decode"]
    assert "takes no q/k/v descales" in reason and "trtllm-gen serves" in reason


def _cache(hkv=2, d=128, pages=4, bs=16):
    k = (torch.randn(pages, hkv, bs, d) * 2).to(E4M3)
    return k, (torch.randn(pages, hkv, bs, d) * 2).to(E4M3)


def test_context_has_no_kernel_for_half_q_with_an_fp8_cache(fi):
    k, v = _cache()
    q = torch.randn(5, 4, 128).to(BF16)
    lens, cu_q = torch.tensor([5], dtype=torch.int32), torch.tensor([0, 5], dtype=torch.int32)
    args = (q, (k, v), torch.zeros(1 << 10, dtype=torch.uint8), torch.tensor([[0]], dtype=torch.int32))
    rest = (lens, 5, 5, 0.1, 1.0, 1, cu_q, torch.tensor([0, 5], dtype=torch.int32))
    with pytest.raises(RuntimeError, match="Trtllm-gen kernels not found"):
        fi.trtllm_batch_context_with_kv_cache(*args, *rest)
    out = fi.trtllm_batch_context_with_kv_cache(q.to(E4M3), *args[1:], *rest, out_dtype=BF16)
    assert out.dtype == BF16
    with pytest.raises(ValueError, match="Unsupported out_dtype"):
        fi.trtllm_batch_context_with_kv_cache(q.to(E4M3), *args[1:], *rest, out_dtype=torch.float32)


def test_decode_takes_half_q_over_fp8_and_the_log2_scale_wins(fi, trtllm):
    k, v = _cache()
    q = torch.randn(1, 4, 128).to(F16)
    tables, lens = torch.tensor([[0, 1]], dtype=torch.int32), torch.tensor([20], dtype=torch.int32)
    ws = torch.zeros(1 << 10, dtype=torch.uint8)
    plain = fi.trtllm_batch_decode_with_kv_cache(q, (k, v), ws, tables, lens, 20, bmm1_scale=0.05)
    log2 = torch.tensor([0.05 * trtllm.LOG2E])
    fused = fi.trtllm_batch_decode_with_kv_cache(
        q, (k, v), ws, tables, lens, 20, bmm1_scale=7.0, bmm1_scale_log2=log2
    )
    assert plain.dtype == F16 and torch.allclose(plain.float(), fused.float(), atol=1e-3)
    with pytest.raises(TypeError, match="float32"):
        fi.trtllm_batch_decode_with_kv_cache(q, (k, v), ws, tables, lens, 20, bmm1_scale_log2=log2.double())


def test_query_quantization_keeps_the_tensor_within_e4m3(trtllm):
    q = torch.randn(7, 4, 128).to(BF16) * 900  # past e4m3's 448: the scale brings it in range
    q8, scale = trtllm.quantize_query(q)
    assert q8.dtype == E4M3 and scale.shape == (1,) and scale.dtype == torch.float32
    back = q8.float() * scale
    assert torch.isfinite(back).all()
    assert ((back - q.float()).abs() <= q.float().abs() * 2**-4 + scale * 2**-9).all()
    q8, scale = trtllm.quantize_query(torch.zeros(3, 2, 64, dtype=F16))  # no division by zero
    assert (q8.float() == 0).all() and scale.item() > 0


def test_decode_makes_the_fused_scale_once_per_k_scale_tensor(trtllm):
    fused = trtllm.bmm1_log2(0.125)
    k_scale = torch.tensor([0.5])
    first = fused(k_scale)
    assert fused(k_scale) is first
    assert first.item() == pytest.approx(0.5 * 0.125 * trtllm.LOG2E)


def test_fp8_cache_cases_beyond_the_kits_grid():
    """The kit's builders and oracles on fp8 shapes its grid does not hold (bf16, head dim 256, GQA 8, a
    window, sinks, a cached prefix), two seeds each: the e4m3 query of prefill stays within the
    contract's fp8-cache tolerance."""
    from anyaccel.conformance.case import Case
    from anyaccel.conformance.cases import attention as kit
    from anyaccel.conformance.oracles import attention as oracle
    from anyaccel.conformance.runner import run_case

    shape = kit.Shape(BF16, 16, 2, 256, 32, "HND", kv_dtype=E4M3, window=40, sinks=True)
    cases = [
        Case(
            "attention.prefill",
            "fp8 hd256",
            shape.spec(True),
            kit._make_prefill(shape, (30, 3), (25, 70)),
            functools.partial(oracle.prefill, "HND"),
            shape.tolerance(),
        ),
        Case(
            "attention.decode",
            "fp8 hd256",
            shape.spec(),
            kit._make_decode(shape, (90, 1, 0)),
            functools.partial(oracle.decode, "HND"),
            shape.tolerance(),
        ),
    ]
    with override({"ANYACCEL_EMULATE": "cuda:sm_100"}):
        ctx = context.get()
        for case in cases:
            name = "flashinfer.trtllm_" + case.op.split(".")[1]
            record = next(k for k in ctx.kernels_for(case.op) if k.name == name)
            for seed in range(2):
                result = run_case(
                    record, dataclasses.replace(case, seed=seed), ctx.platform, "cpu", False, {}
                )
                assert result.status == "passed", (case.op, seed, result.detail)
