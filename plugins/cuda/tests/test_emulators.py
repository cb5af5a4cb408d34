"""The emulators are as strict as the libraries they stand for: architecture limits of the emulated device,
the plan/run state machine, argument checks. An emulator that accepted these would let a wrong gate or a
wrong argument mapping pass the conformance kit."""

from __future__ import annotations

import importlib

import pytest
import torch

from anyaccel.env import override

BF16 = torch.bfloat16


@pytest.fixture
def emulate():
    """emulate("sm_110") -> the flashinfer/flash_attn/deep_gemm emulator modules, reading that capability."""
    stack = []

    def use(cap: str):
        ctx = override({"ANYACCEL_EMULATE": f"cuda:{cap}"})
        ctx.__enter__()
        stack.append(ctx)
        load = importlib.import_module
        return {
            "fi": load("anyaccel_cuda.emulators.flashinfer"),
            "fa": load("anyaccel_cuda.emulators.flash_attn.cute"),
            "dg": load("anyaccel_cuda.emulators.deep_gemm"),
            "ops": load("anyaccel_cuda.emulators.torch_ops"),
        }

    yield use
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def _paged(layout="HND", blocks=4, bs=16, hkv=2, d=64, dtype=BF16):
    shape = (blocks, hkv, bs, d) if layout == "HND" else (blocks, bs, hkv, d)
    return torch.randn(shape).to(dtype), torch.randn(shape).to(dtype)


def _trtllm_decode(fi):
    k, v = _paged()
    q = torch.randn(2, 4, 64).to(BF16)
    tables = torch.tensor([[0, 1], [2, 3]], dtype=torch.int32)
    lens = torch.tensor([20, 5], dtype=torch.int32)
    ws = torch.empty(1 << 20, dtype=torch.uint8)
    return fi.trtllm_batch_decode_with_kv_cache(
        q, (k, v), ws, tables, lens, 20, bmm1_scale=0.125, backend="trtllm-gen"
    )


@pytest.mark.parametrize("cap", ["sm_90", "sm_110", "sm_120", "sm_121"])
def test_trtllm_gen_exists_only_on_sm10x(emulate, cap):
    with pytest.raises(RuntimeError, match="Unsupported architecture"):
        _trtllm_decode(emulate(cap)["fi"])


def test_trtllm_gen_runs_on_sm103(emulate):
    assert _trtllm_decode(emulate("sm_103")["fi"]).shape == (2, 4, 64)


def test_trtllm_auto_backend_on_sm110_has_nothing(emulate):
    """FlashInfer's "auto" picks XQA off the sm_100 family; XQA needs major 9, 10 or 12."""
    fi = emulate("sm_110")["fi"]
    k, v = _paged()
    with pytest.raises(RuntimeError, match="xqa"):
        fi.trtllm_batch_decode_with_kv_cache(
            torch.randn(1, 4, 64).to(BF16),
            (k, v),
            torch.empty(16, dtype=torch.uint8),
            torch.zeros(1, 1, dtype=torch.int32),
            torch.ones(1, dtype=torch.int32),
            1,
        )


def test_decode_wrapper_run_before_plan_raises_and_run_uses_the_plan(emulate):
    fi = emulate("sm_120")["fi"]
    wrapper = fi.BatchDecodeWithPagedKVCacheWrapper(torch.empty(16, dtype=torch.uint8), kv_layout="NHD")
    k, v = _paged("NHD")
    q = torch.randn(2, 4, 64).to(BF16)
    with pytest.raises(RuntimeError, match="plan"):
        wrapper.run(q, (k, v))
    indptr = torch.tensor([0, 2, 3], dtype=torch.int32)
    wrapper.plan(
        indptr,
        torch.tensor([0, 1, 3], dtype=torch.int32),
        torch.tensor([4, 16], dtype=torch.int32),
        4,
        2,
        64,
        16,
        q_data_type=BF16,
        window_left=7,
    )
    with pytest.raises(ValueError, match="window_left differs"):
        wrapper.run(q, (k, v), window_left=3)
    with pytest.raises(ValueError, match="as planned"):
        wrapper.run(q[:1], (k, v))
    assert wrapper.run(q, (k, v)).shape == q.shape


def test_prefill_wrapper_checks_head_dims_and_dtypes(emulate):
    fi = emulate("sm_90")["fi"]
    wrapper = fi.BatchPrefillWithPagedKVCacheWrapper(torch.empty(16, dtype=torch.uint8))
    args = (
        torch.tensor([0, 3], dtype=torch.int32),
        torch.tensor([0, 1], dtype=torch.int32),
        torch.tensor([0], dtype=torch.int32),
        torch.tensor([3], dtype=torch.int32),
        4,
        2,
    )
    with pytest.raises(ValueError, match="head_dim"):
        wrapper.plan(*args, 96, 16, q_data_type=BF16)
    with pytest.raises(ValueError, match="q_data_type"):
        wrapper.plan(*args, 64, 16, q_data_type=torch.float32)
    with pytest.raises(TypeError):
        wrapper.plan(*args, 64, 16, q_data_type=BF16, no_such_argument=1)


def test_fa4_limits(emulate):
    q = torch.randn(3, 4, 64).to(BF16)
    k, v = _paged("NHD")
    kw = dict(
        cu_seqlens_q=torch.tensor([0, 3], dtype=torch.int32),
        seqused_k=torch.tensor([3], dtype=torch.int32),
        page_table=torch.tensor([[1]], dtype=torch.int32),
        causal=True,
    )
    with pytest.raises(AssertionError, match="Paged KV not supported on SM 12.0"):
        emulate("sm_121")["fa"].flash_attn_varlen_func(q, k, v, **kw)
    out, lse = emulate("sm_110")["fa"].flash_attn_varlen_func(q, k, v, **kw)
    assert out.shape == q.shape and lse is None
    f8 = torch.float8_e4m3fn
    with pytest.raises(AssertionError, match="FP8 is only supported on SM100"):
        emulate("sm_90")["fa"].flash_attn_varlen_func(q.to(f8), k.to(f8), v.to(f8), **kw)
    with pytest.raises(AssertionError, match="not supported on SM100"):
        q192, k192 = torch.randn(3, 4, 192).to(BF16), torch.randn(4, 16, 2, 192).to(BF16)
        emulate("sm_100")["fa"].flash_attn_varlen_func(q192, k192, k192, **kw)


def _fp8_operands(m=4, n=128, k=256):
    a = torch.randn(m, k).to(torch.float8_e4m3fn)
    b = torch.randn(n, k).to(torch.float8_e4m3fn)
    return a, b, torch.full((m, k // 128), 0.3), torch.full((n // 128, k // 128), 0.7)


def test_deepgemm_arch_and_ue8m0(emulate):
    a, b, sa, sb = _fp8_operands()
    d = torch.empty(4, 128, dtype=BF16)
    with pytest.raises(RuntimeError, match="Unsupported architecture"):
        emulate("sm_110")["dg"].fp8_gemm_nt((a, sa), (b, sb), d)
    emulate("sm_90")["dg"].fp8_gemm_nt((a, sa), (b, sb), d)
    exact = d.float().clone()
    emulate("sm_100")["dg"].fp8_gemm_nt((a, sa), (b, sb), d)
    # UE8M0 rounds 0.3 -> 0.5 and 0.7 -> 1.0: the product grows by (0.5 * 1.0) / (0.3 * 0.7)
    assert torch.allclose(d.float(), exact * (0.5 / 0.21), rtol=2e-2, atol=1e-2)


def test_groupwise_gemm_and_cutlass_moe_arches(emulate):
    a, b, sa, sb = _fp8_operands()
    with pytest.raises(RuntimeError, match="compute capability 90"):
        emulate("sm_90")["fi"].gemm_fp8_nt_groupwise(a, b, sa.t().contiguous(), sb.t().contiguous(), "MN")
    with pytest.raises(ValueError, match="scale_major_mode is required"):
        emulate("sm_121")["fi"].gemm_fp8_nt_groupwise(a, b, sa, sb)
    fi = emulate("sm_110")["fi"]
    x = torch.randn(2, 64).to(BF16)
    with pytest.raises(RuntimeError, match="sm_110"):
        fi.cutlass_fused_moe(
            x,
            torch.zeros(2, 1, dtype=torch.int32),
            torch.ones(2, 1),
            torch.randn(1, 32, 64).to(BF16),
            torch.randn(1, 64, 16).to(BF16),
            BF16,
            [],
        )


def test_torch_ops_limits(emulate):
    ops = emulate("sm_100")["ops"]
    a, b, sa, sb = _fp8_operands(m=32, n=128, k=256)
    with pytest.raises(RuntimeError, match="sm_90"):
        ops.scaled_mm(a, b.t(), sa, sb, out_dtype=BF16)
    with pytest.raises(RuntimeError, match="row-wise"):
        ops.scaled_mm(a, b.t(), torch.ones(32, 1), torch.ones(1, 128), out_dtype=torch.float16)
    with pytest.raises(RuntimeError, match="greater than 16"):
        ops.int_mm(torch.ones(16, 32, dtype=torch.int8), torch.ones(32, 8, dtype=torch.int8))
    with pytest.raises(RuntimeError, match="sm_90 only"):
        k, v = _paged("NHD")
        ops.varlen_attn(
            torch.randn(3, 2, 64).to(BF16),
            k,
            v,
            torch.tensor([0, 3], dtype=torch.int32),
            None,
            3,
            3,
            seqused_k=torch.tensor([3], dtype=torch.int32),
            block_table=torch.tensor([[0]], dtype=torch.int32),
        )


def test_unknown_keywords_raise_type_error(emulate):
    fi = emulate("sm_100")["fi"]
    x = torch.randn(2, 64).to(BF16)
    with pytest.raises(TypeError):
        fi.rmsnorm(x, torch.ones(64).to(BF16), 1e-6, epsilon=1e-5)
    with pytest.raises(ValueError, match="float32"):
        fi.apply_rope_with_cos_sin_cache(
            torch.zeros(2, dtype=torch.int64), x, x, 64, torch.ones(8, 64).to(BF16)
        )


def test_emulators_refuse_to_run_outside_emulation():
    from anyaccel_cuda.emulators import arch

    with override({"ANYACCEL_EMULATE": None}), pytest.raises(RuntimeError, match="outside an emulated cuda"):
        arch.sm_version()
