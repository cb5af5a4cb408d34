"""The emulators reject what MATE and torch_musa reject (gates.py), so a kernel that passes under emulation
passed the vendor's argument checks too; and they compute what the vendor documents."""

from __future__ import annotations

import pytest
import torch
from anyaccel_musa.emulators import mate, musa_ops
from anyaccel_musa.emulators.mate import deep_gemm

from anyaccel.emulated_attention import attend


@pytest.fixture(autouse=True)
def s5000(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "musa:mp_31")


def _paged(batch=2, hq=4, hkv=2, d=64, page=16, lens=(5, 19), dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(0)
    pages = 8
    k = torch.randn(pages, page, hkv, d, generator=g).to(dtype)
    v = torch.randn(pages, page, hkv, d, generator=g).to(dtype)
    table = torch.randperm(pages, generator=g)[: batch * 2].view(batch, 2).to(torch.int32)
    seqused = torch.tensor(lens, dtype=torch.int32)
    q = torch.randn(batch, hq, d, generator=g).to(dtype)
    return q, k, v, table, seqused


def _decode(q, k, v, table, seqused, **kwargs):
    return mate.flash_attn_with_kvcache(
        q.unsqueeze(1), k, v, cache_seqlens=seqused, page_table=table, causal=True, **kwargs
    ).squeeze(1)


def test_decode_is_attention_over_the_pages():
    q, k, v, table, seqused = _paged()
    out = _decode(q, k, v, table, seqused)
    for b in range(2):
        keys = k[table[b].long()].reshape(-1, 2, 64)[: int(seqused[b])]
        values = v[table[b].long()].reshape(-1, 2, 64)[: int(seqused[b])]
        want = attend(q[b : b + 1], keys, values, scale=64**-0.5, causal=True)
        torch.testing.assert_close(out[b : b + 1].float(), want, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("arch", ["mp_21", "mp_22"])
def test_mate_runs_on_mp31_only(monkeypatch, arch):
    monkeypatch.setenv("ANYACCEL_EMULATE", f"musa:{arch}")
    with pytest.raises(AssertionError, match="MP31 only"):
        _decode(*_paged())
    with pytest.raises(RuntimeError, match="MP31 only"):
        deep_gemm.fp8_gemm_nt(*_fp8_operands(128, 128, 128))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(q=a["q"].float(), k=a["k"].float(), v=a["v"].float()), "float16 or bfloat16"),
        (lambda a: a.update(table=a["table"].long()), "page_table must be int32"),
        (lambda a: a.update(seqused=a["seqused"].long()), "must be int32"),
        (lambda a: a.update(learnable_sink=torch.zeros(4)), "learnable_sink must be bfloat16"),
        (lambda a: a.update(q=a["q"].to(torch.float16)), "same dtype"),
    ],
)
def test_attention_argument_checks(change, message):
    q, k, v, table, seqused = _paged()
    args = dict(q=q, k=k, v=v, table=table, seqused=seqused)
    change(args)
    extra = {"learnable_sink": args.pop("learnable_sink")} if "learnable_sink" in args else {}
    with pytest.raises(AssertionError, match=message):
        _decode(*args.values(), **extra)


def test_head_dims_up_to_512():
    with pytest.raises(AssertionError, match="up to 512"):
        _decode(*_paged(d=576))


def test_stale_scheduler_metadata_is_rejected():
    q, k, v, table, seqused = _paged()
    meta = mate.get_scheduler_metadata(2, 1, 32, 4, 2, 64, seqused_k=seqused, page_size=16, causal=True)
    _decode(q, k, v, table, seqused, scheduler_metadata=meta)  # prepared for this batch: accepted
    longer = seqused + 1
    with pytest.raises(AssertionError, match="other sequence lengths"):
        _decode(q, k, v, table, longer, scheduler_metadata=meta)
    windowed = mate.get_scheduler_metadata(
        2, 1, 32, 4, 2, 64, seqused_k=seqused, page_size=16, causal=True, window_size=(7, 0)
    )
    with pytest.raises(AssertionError, match="prepared for"):
        _decode(q, k, v, table, seqused, scheduler_metadata=windowed)


def test_unemulated_arguments_say_so():
    q, k, v, table, seqused = _paged()
    with pytest.raises(NotImplementedError, match="rotary_cos"):
        _decode(q, k, v, table, seqused, rotary_cos=torch.zeros(4, 8))


def _fp8_operands(m, n, k, out=torch.bfloat16):
    a = torch.randn(m, k).to(torch.float8_e4m3fn)
    b = torch.randn(n, k).to(torch.float8_e4m3fn)
    sa = torch.rand(m, -(-k // 128)) + 0.5
    sb = torch.rand(-(-n // 128), -(-k // 128)) + 0.5
    return (a, sa), (b, sb), torch.empty(m, n, dtype=out)


def test_fp8_gemm_nt_scales_by_tiles():
    (a, sa), (b, sb), d = _fp8_operands(3, 256, 256)
    deep_gemm.fp8_gemm_nt((a, sa), (b, sb), d)
    want = (a.float() * sa.repeat_interleave(128, 1)) @ (
        b.float() * sb.repeat_interleave(128, 0).repeat_interleave(128, 1)
    ).T
    torch.testing.assert_close(d.float(), want, atol=0.5, rtol=1e-2)


def test_fp8_gemm_nt_checks():
    (a, sa), (b, sb), d = _fp8_operands(3, 256, 256)
    with pytest.raises(AssertionError, match="Not support GEMM with C"):
        deep_gemm.fp8_gemm_nt((a, sa), (b, sb), d, c=torch.zeros(3, 256))
    with pytest.raises(ValueError, match="Only bf16 and fp16"):
        deep_gemm.fp8_gemm_nt((a, sa), (b, sb), torch.empty(3, 256))
    with pytest.raises(RuntimeError, match="scales of shape"):
        deep_gemm.fp8_gemm_nt((a, sa[:, :1].contiguous()), (b, sb), d)
    with pytest.raises(RuntimeError, match="e4m3 or e5m2"):
        deep_gemm.fp8_gemm_nt((a.to(torch.float8_e4m3fnuz), sa), (b, sb), d)


def test_grouped_gemm_layout_checks():
    a = torch.randn(256, 128).to(torch.float8_e4m3fn)
    sa = torch.ones(256, 1)
    b = torch.randn(2, 256, 128).to(torch.float8_e4m3fn)
    sb = torch.ones(2, 2, 1)
    d = torch.zeros(256, 256, dtype=torch.bfloat16)
    mixed = torch.cat([torch.zeros(100), torch.ones(28), torch.ones(128)]).to(torch.int32)
    with pytest.raises(RuntimeError, match="mixes experts"):
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous((a, sa), (b, sb), d, mixed)
    with pytest.raises(RuntimeError, match="multiple of alignment_m"):
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous((a[:200], sa[:200]), (b, sb), d[:200], mixed[:200])
    with pytest.raises(Exception, match="UE8M0"):
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous((a, sa), (b, sb), d, mixed, disable_ue8m0_cast=False)


def test_rms_norm_wants_the_weight_in_the_input_dtype():
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="must be the same"):
        musa_ops.fused_rmsnorm_forward(x, [64], 1e-6, torch.ones(64))
    y, invvar = musa_ops.fused_rmsnorm_forward(x, [64], 1e-6, torch.ones(64, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and invvar.dtype == torch.float32 and invvar.shape == (3,)


def test_swiglu_and_rope_from_mp22(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "musa:mp_21")
    with pytest.raises(RuntimeError, match="arch 21"):
        musa_ops.fused_swiglu_forward(torch.randn(2, 8))
    with pytest.raises(RuntimeError, match="arch 21"):
        musa_ops.fused_rope_forward(torch.randn(2, 1, 1, 8), torch.randn(2, 8), False, False)
    monkeypatch.setenv("ANYACCEL_EMULATE", "musa:mp_22")
    x = torch.randn(2, 8)
    torch.testing.assert_close(
        musa_ops.fused_swiglu_forward(x), torch.nn.functional.silu(x[:, :4]) * x[:, 4:]
    )
    with pytest.raises(NotImplementedError, match="rotary_interleaved"):
        musa_ops.fused_rope_forward(torch.randn(2, 1, 1, 8), torch.randn(2, 8), True, False)
