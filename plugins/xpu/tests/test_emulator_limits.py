"""The emulators refuse what the Intel libraries rule out (gates.py cites each source) and compute what
they document: each limit that a kernel gate mirrors has a case here."""

from __future__ import annotations

import importlib

import pytest
import torch

import anyaccel
from anyaccel import context


@pytest.fixture
def emulate(monkeypatch):
    def on(arch: str):
        monkeypatch.setenv("ANYACCEL_EMULATE", f"xpu:{arch}")
        anyaccel.reset()
        assert context.get().platform.emulated  # detection installs the emulators
        return (
            importlib.import_module("vllm_xpu_kernels.flash_attn_interface"),
            importlib.import_module("anyaccel_xpu.vendor_ops"),
        )

    yield on
    anyaccel.reset()


def _paged(dtype=torch.bfloat16, block=16, d=64, descale=None, **overrides):
    """Two sequences (3 new tokens over 20 keys, 1 over 5) on a [3, block, 2, d] cache, Hq 4."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(4, 4, d, generator=g).to(dtype)
    cache = torch.randn(3, block, 2, d, generator=g).to(dtype)
    kwargs = dict(
        seqused_k=torch.tensor([20, 5], dtype=torch.int32),
        block_table=torch.tensor([[0, 1], [2, -1]], dtype=torch.int32),
        causal=True,
        k_descale=descale,
        v_descale=descale,
    )
    kwargs.update(overrides)
    return q, cache, kwargs


def _call(fa, q, cache, kwargs):
    cu = torch.tensor([0, 3, 4], dtype=torch.int32)
    return fa.flash_attn_varlen_func(q, cache, cache.clone(), 3, cu, 20, **kwargs)


def test_flash_attention_runs_on_bmg_and_pvc_only(emulate):
    for arch in ("bmg", "pvc"):
        fa, _ = emulate(arch)
        assert _call(fa, *_paged()).shape == (4, 4, 64)
    fa, _ = emulate("lnl")
    with pytest.raises(RuntimeError, match="no device image for lnl"):
        _call(fa, *_paged())


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        (dict(dtype=torch.float32), RuntimeError, "only supports fp16 and bf16"),
        (dict(block=8), RuntimeError, "Unsupported page size"),
        (dict(block_table=torch.tensor([[0, 1], [2, -1]], dtype=torch.int64)), RuntimeError, "int32"),
        (dict(softcap=30.0), NotImplementedError, "softcap"),
        (dict(descale=torch.ones(4)[:1]), AssertionError, "view of single scalar"),
    ],
)
def test_flash_attention_checks(emulate, case, error, message):
    fa, _ = emulate("bmg")
    q, cache, kwargs = _paged(**{k: case.pop(k) for k in ("dtype", "block", "descale") if k in case})
    kwargs.update(case)
    with pytest.raises(error, match=message):
        _call(fa, q, cache, kwargs)


def test_window_keeps_left_keys_only(emulate):
    """window_size (1, 0): each query sees itself and one key before it."""
    fa, _ = emulate("bmg")
    q, cache, kwargs = _paged(window_size=(1, 0))
    v = cache.clone()
    v.view(-1, 2, 64)[:] = torch.arange(48, dtype=torch.bfloat16).view(48, 1, 1)  # value = slot index
    cu = torch.tensor([0, 3, 4], dtype=torch.int32)
    out = fa.flash_attn_varlen_func(q, cache, v, 3, cu, 20, **kwargs)
    # sequence 0's last query sits at position 19 (slots 16..19 are page 1's first four)
    assert 18 <= float(out[2, 0, 0]) <= 19


def test_fp8_gemm_groups_must_agree(emulate):
    _, ops = emulate("bmg")
    a = torch.randn(2, 256).to(torch.float8_e4m3fn)
    b = torch.randn(256, 128).to(torch.float8_e4m3fn)
    with pytest.raises(RuntimeError, match="Mismatch group size"):
        ops.xpu_C.fp8_gemm(a, b, torch.bfloat16, torch.ones(2, 2), torch.ones(1, 1), None)
    with pytest.raises(RuntimeError, match=r"\[N\] \(per channel\)"):
        ops.xpu_C.fp8_gemm(a, b, torch.bfloat16, torch.ones(2, 1), torch.ones(128, 1), None)


def test_w4a16_reads_column_major_words(emulate):
    _, ops = emulate("bmg")
    x = torch.randn(2, 64, dtype=torch.float16)
    words = torch.zeros(8, 32, dtype=torch.int32)  # row-major [K/8, N]
    scales = torch.ones(2, 32, dtype=torch.float16)
    zero = torch.tensor([8], dtype=torch.int8)
    with pytest.raises(RuntimeError, match="column-major"):
        ops.xpu_C.int4_gemm_w4a16(x, words, None, scales, zero, 32, None)
    out = ops.xpu_C.int4_gemm_w4a16(x, words.t().contiguous().t(), None, scales, zero, 32, None)
    torch.testing.assert_close(
        out.float(), -8 * x.float().sum(-1, keepdim=True).expand(2, 32), rtol=1e-2, atol=1e-2
    )


def test_rotary_cache_must_have_the_query_dtype(emulate):
    _, ops = emulate("bmg")
    q = torch.randn(3, 2, 64, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="query's dtype"):
        ops.C.rotary_embedding(torch.arange(3), q, q.clone(), 64, torch.randn(8, 64), True)
