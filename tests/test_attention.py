"""The torch reference for attention.* against the conformance kit, plus targeted semantics checks."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import anyaccel
from anyaccel import context
from anyaccel.conformance.oracles import attention as oracle
from anyaccel.conformance.tolerance import BY_DTYPE
from anyaccel.ops import attention as contract
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.base import ContractError
from anyaccel.ops.kv_cache import KVLayout, layout

FP32 = {"atol": BY_DTYPE[torch.float32].atol, "rtol": BY_DTYPE[torch.float32].rtol}


def reference(op: str, spec: AttentionSpec):
    return anyaccel.resolve(op, spec, provider="reference").fn


@pytest.mark.anyaccel_conformance(provider="reference", op="attention.prefill")
def test_prefill_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="attention.decode")
def test_decode_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="attention.write_kv")
def test_write_kv_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


def _filled_cache(spec: AttentionSpec, num_blocks: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    k_cache, v_cache = layout(spec.kv_layout).allocate(
        num_blocks, spec.block_size, spec.num_kv_heads, spec.head_dim, spec.cache_dtype
    )
    for cache in (k_cache, v_cache):
        cache.copy_(torch.randn(cache.shape, generator=g).to(cache.dtype))
    return k_cache, v_cache


def _as_hnd(cache: torch.Tensor) -> torch.Tensor:
    return cache.transpose(1, 2).contiguous()


def test_kernels_keep_the_contract_signature_and_specialise_per_layout():
    for op, stub in (
        ("attention.prefill", contract.prefill),
        ("attention.decode", contract.decode),
        ("attention.write_kv", contract.write_kv),
    ):
        nhd, hnd = (reference(op, AttentionSpec(kv_layout=name)) for name in ("NHD", "HND"))
        assert nhd is not hnd
        for fn in (nhd, hnd):
            assert list(inspect.signature(fn).parameters.values()) == list(
                inspect.signature(stub).parameters.values()
            )


def test_write_kv_skips_padded_slots():
    spec = AttentionSpec(num_q_heads=2, num_kv_heads=2, head_dim=64, block_size=16)
    k_cache, v_cache = layout("NHD").allocate(2, 16, 2, 64, torch.float32)
    k, v = torch.randn(3, 2, 64), torch.randn(3, 2, 64)
    reference("attention.write_kv", spec)(k, v, k_cache, v_cache, torch.tensor([17, -1, 3]))
    torch.testing.assert_close(k_cache[1, 1], k[0])
    torch.testing.assert_close(v_cache[0, 3], v[2])
    written = torch.zeros(2, 16, dtype=torch.bool)
    written[1, 1] = written[0, 3] = True
    assert not k_cache[~written].any() and not v_cache[~written].any()


@pytest.mark.parametrize("fp8, limit", [(torch.float8_e4m3fn, 448.0), (torch.float8_e4m3fnuz, 240.0)])
def test_fp8_write_saturates_and_decode_dequantizes(fp8, limit):
    spec = AttentionSpec(
        num_q_heads=1, num_kv_heads=1, head_dim=64, block_size=16, kv_dtype=fp8, kv_layout="HND"
    )
    k_cache, v_cache = layout("HND").allocate(1, 16, 1, 64, fp8)
    k_scale, v_scale = torch.tensor([0.5]), torch.tensor([2.0])
    k = torch.full((2, 1, 64), 1.5)
    k[1] = 1e6  # far beyond the range: saturates instead of becoming NaN
    v = torch.full((2, 1, 64), -3.0)
    reference("attention.write_kv", spec)(k, v, k_cache, v_cache, torch.tensor([0, 1]), k_scale, v_scale)
    assert k_cache[0, 0, 0].float().eq(3.0).all()  # 1.5 / 0.5, exact in e4m3
    assert k_cache[0, 0, 1].float().eq(limit).all()
    assert v_cache[0, 0, :2].float().eq(-1.5).all()
    q = torch.zeros(1, 1, 64)  # equal logits: the output is the mean of the dequantized values
    out = reference("attention.decode", spec)(
        q,
        k_cache,
        v_cache,
        torch.tensor([[0]], dtype=torch.int32),
        torch.tensor([2], dtype=torch.int32),
        2,
        0.125,
        k_scale=k_scale,
        v_scale=v_scale,
    )
    torch.testing.assert_close(out, torch.full((1, 1, 64), -3.0))


def test_hnd_and_nhd_caches_give_the_same_decode():
    nhd = AttentionSpec(num_q_heads=8, num_kv_heads=2, head_dim=64, block_size=16)
    hnd = AttentionSpec(num_q_heads=8, num_kv_heads=2, head_dim=64, block_size=16, kv_layout="HND")
    k_cache, v_cache = _filled_cache(nhd, 6)
    q, tables = torch.randn(2, 8, 64), torch.tensor([[4, 1, -1], [0, 5, 2]], dtype=torch.int32)
    lens = torch.tensor([20, 40], dtype=torch.int32)
    want = reference("attention.decode", nhd)(q, k_cache, v_cache, tables, lens, 40, 0.125)
    got = reference("attention.decode", hnd)(q, _as_hnd(k_cache), _as_hnd(v_cache), tables, lens, 40, 0.125)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def _prefill(spec, q, k, v, k_cache, v_cache, tables, new, total):
    cu = torch.tensor([0, new], dtype=torch.int32)
    return reference("attention.prefill", spec)(
        q,
        k,
        v,
        k_cache,
        v_cache,
        tables,
        cu,
        torch.tensor([total], dtype=torch.int32),
        new,
        total,
        spec.softmax_scale,
        sliding_window=spec.sliding_window,
        softcap=spec.softcap,
    )


@pytest.mark.parametrize("window, softcap", [(-1, 0.0), (5, 0.0), (-1, 3.0)])
def test_chunked_prefill_and_decode_agree_with_full_prefill(window, softcap):
    """A 23-token prompt written once: prefill of all of it, of its last 9 tokens behind a 14-token cached
    prefix, and decode of its last token must agree row for row."""
    spec = AttentionSpec(
        num_q_heads=4, num_kv_heads=1, head_dim=64, block_size=16, sliding_window=window, softcap=softcap
    )
    n, cached = 23, 14
    k_cache, v_cache = layout("NHD").allocate(3, 16, 1, 64, torch.float32)
    tables = torch.tensor([[2, 0]], dtype=torch.int32)
    slots = torch.tensor([2 * 16 + i if i < 16 else i - 16 for i in range(n)])
    q, k, v = torch.randn(n, 4, 64), torch.randn(n, 1, 64), torch.randn(n, 1, 64)
    reference("attention.write_kv", spec)(k, v, k_cache, v_cache, slots)
    full = _prefill(spec, q, k, v, k_cache, v_cache, tables, n, n)
    chunk = _prefill(
        dataclasses.replace(spec, prefix=True),
        q[cached:],
        k[cached:],
        v[cached:],
        k_cache,
        v_cache,
        tables,
        n - cached,
        n,
    )
    torch.testing.assert_close(chunk, full[cached:])
    last = reference("attention.decode", spec)(
        q[-1:],
        k_cache,
        v_cache,
        tables,
        torch.tensor([n], dtype=torch.int32),
        n,
        spec.softmax_scale,
        sliding_window=window,
        softcap=softcap,
    )
    torch.testing.assert_close(last, full[-1:])


def _one_token_per_block(keys: list[float], values: list[float], head_dim: int = 64):
    """A one-head cache of len(keys) tokens in block 0: key j = keys[j] * e0, value j = values[j] * e1."""
    k_cache, v_cache = layout("NHD").allocate(1, 16, 1, head_dim, torch.float32)
    for j, (key, value) in enumerate(zip(keys, values, strict=True)):
        k_cache[0, j, 0, 0] = key
        v_cache[0, j, 0, 1] = value
    return k_cache, v_cache


def _decode_e1(spec: AttentionSpec, keys, values, **kwargs) -> float:
    """Output channel 1 of a decode with q = e0 and scale 1 over the hand-made cache."""
    k_cache, v_cache = _one_token_per_block(keys, values)
    q = torch.zeros(1, 1, 64)
    q[0, 0, 0] = 1.0
    out = reference("attention.decode", spec)(
        q,
        k_cache,
        v_cache,
        torch.tensor([[0]], dtype=torch.int32),
        torch.tensor([len(keys)], dtype=torch.int32),
        len(keys),
        1.0,
        **kwargs,
    )
    return float(out[0, 0, 1])


def _tiny(**fields) -> AttentionSpec:
    return AttentionSpec(num_q_heads=1, num_kv_heads=1, head_dim=64, scale=1.0, **fields)


def test_sliding_window_sees_the_last_w_keys():
    # equal logits: the query at position 3 with W=2 averages values at positions 2 and 3
    got = _decode_e1(_tiny(sliding_window=2), [0, 0, 0, 0], [10, 20, 30, 40], sliding_window=2)
    assert got == pytest.approx(35.0)


def test_softcap_caps_logits_before_the_softmax():
    # logits 10 and 0 become tanh(10) and 0 under a cap of 1
    got = _decode_e1(_tiny(softcap=1.0), [10, 0], [1, 0], softcap=1.0)
    assert got == pytest.approx(math.exp(math.tanh(10)) / (math.exp(math.tanh(10)) + 1))


def test_sinks_join_the_denominator_only():
    # equal logits 0 and a sink logit log(2): each of the 3 keys weighs 1 / (2 + 3)
    sinks = torch.tensor([math.log(2.0)])
    got = _decode_e1(_tiny(sinks=True), [0, 0, 0], [5, 10, 35], sinks=sinks)
    assert got == pytest.approx(50.0 / 5.0)


def test_zero_length_decode_rows_are_zero_even_with_sinks():
    got = _decode_e1(_tiny(sinks=True), [], [], sinks=torch.tensor([3.0]))
    assert got == 0.0


@pytest.mark.parametrize("op", ["attention.prefill", "attention.decode", "attention.write_kv"])
@pytest.mark.parametrize(
    "fields, message",
    [
        ({"num_q_heads": 6, "num_kv_heads": 4}, "multiple of num_kv_heads"),
        ({"sliding_window": True}, "sliding_window must be an int"),
        ({"sliding_window": 8, "causal": False}, "needs causal"),
        ({"softcap": -1.0}, "softcap must be"),
        ({"block_size": 24}, "power of two"),
        ({"kv_dtype": torch.int8}, "kv_dtype"),
    ],
)
def test_bad_specs_are_rejected_naming_the_op(op, fields, message):
    with pytest.raises(ValueError, match=message) as err:
        anyaccel.bind(op, AttentionSpec(**fields))
    assert isinstance(err.value, ContractError) and str(err.value).startswith(op)


def test_a_vendor_layout_is_rejected_with_a_reason(monkeypatch):
    monkeypatch.setitem(context.get().kv_layouts, "X5", KVLayout("X5", lambda *a: a, lambda *a: a))
    res = anyaccel.resolve("attention.decode", AttentionSpec(kv_layout="X5"), provider="reference")
    assert res.selected is None
    assert "reads KV layouts NHD, HND only" in res.candidates[0].reason


def test_validation_catches_call_values_that_differ_from_the_spec(monkeypatch):
    monkeypatch.setenv("ANYACCEL_VALIDATE", "1")
    anyaccel.reset()
    spec = AttentionSpec(num_q_heads=2, num_kv_heads=1, head_dim=64, sliding_window=4)
    k_cache, v_cache = _filled_cache(spec, 1)
    decode = anyaccel.resolve("attention.decode", spec, provider="reference").fn
    args = (
        torch.randn(1, 2, 64),
        k_cache,
        v_cache,
        torch.zeros(1, 1, dtype=torch.int32),
        torch.tensor([3], dtype=torch.int32),
        3,
        spec.softmax_scale,
    )
    decode(*args, sliding_window=4)
    with pytest.raises(ContractError, match="attention.decode: sliding_window"):
        decode(*args, sliding_window=8)


@st.composite
def _batches(draw):
    hkv = draw(st.sampled_from([1, 2]))
    spec = AttentionSpec(
        dtype=torch.float32,
        num_q_heads=hkv * draw(st.sampled_from([1, 3, 4])),
        num_kv_heads=hkv,
        head_dim=draw(st.sampled_from([64, 80])),
        block_size=draw(st.sampled_from([16, 32])),
        kv_layout=draw(st.sampled_from(["NHD", "HND"])),
        sliding_window=draw(st.sampled_from([-1, 1, 7])),
        softcap=draw(st.sampled_from([0.0, 4.0])),
        sinks=draw(st.booleans()),
        prefix=True,
    )
    new = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3))
    cached = draw(st.lists(st.integers(0, 40), min_size=len(new), max_size=len(new)))
    return spec, new, cached, draw(st.integers(0, 2**16))


@settings(max_examples=25, deadline=None)
@given(_batches())
def test_random_batches_match_the_oracle(batch):
    """Random small batches: write_kv then prefill, and decode of each sequence's last token, against the
    oracle (which reads the cache one token at a time)."""
    spec, new, cached, seed = batch
    g = torch.Generator().manual_seed(seed)
    totals = [n + c for n, c in zip(new, cached, strict=True)]
    width = max(-(-t // spec.block_size) for t in totals)
    num_blocks = width * len(totals)
    tables = torch.randperm(num_blocks, generator=g).view(len(totals), width).int()
    k_cache, v_cache = _filled_cache(spec, num_blocks, seed)
    hq, hkv, d = spec.num_q_heads, spec.num_kv_heads, spec.head_dim
    t = sum(new)
    q, k, v = (torch.randn(t, h, d, generator=g) for h in (hq, hkv, hkv))
    slots = torch.cat(
        [
            tables[b, torch.arange(c, c + n) // spec.block_size].long() * spec.block_size
            + torch.arange(c, c + n) % spec.block_size
            for b, (n, c) in enumerate(zip(new, cached, strict=True))
        ]
    )
    reference("attention.write_kv", spec)(k, v, k_cache, v_cache, slots)
    cu = torch.tensor([0, *new]).cumsum(0).int()
    lens = torch.tensor(totals, dtype=torch.int32)
    values = {
        "sliding_window": spec.sliding_window,
        "softcap": spec.softcap,
        "sinks": torch.randn(hq, generator=g) if spec.sinks else None,
    }
    args = (q, k, v, k_cache, v_cache, tables, cu, lens, max(new), max(totals), spec.softmax_scale)
    got = reference("attention.prefill", spec)(*args, **values)
    torch.testing.assert_close(got, oracle.prefill(spec.kv_layout, *args, **values).float(), **FP32)
    last = q[cu[1:].long() - 1]
    decode_args = (last, k_cache, v_cache, tables, lens, max(totals), spec.softmax_scale)
    got = reference("attention.decode", spec)(*decode_args, **values)
    torch.testing.assert_close(got, oracle.decode(spec.kv_layout, *decode_args, **values).float(), **FP32)
