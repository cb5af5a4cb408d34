"""ANYACCEL_VALIDATE=1 checks the values kernels index with (block ids, slot ids, expert ids, positions,
seq_lens against the cache and max_seq_len), the caches' shapes and the scales' shapes, and every message
names the op and the argument. Without it, the bound kernel is the kernel itself: the checks cost nothing."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.base import ContractError
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.quant import GemmSpec
from anyaccel.ops.rope import RopeSpec

SPEC = AttentionSpec(torch.float32, 4, 2, 64, block_size=16)
I32 = torch.int32


@pytest.fixture
def validate(monkeypatch):
    monkeypatch.setenv("ANYACCEL_VALIDATE", "1")
    anyaccel.reset()


def _cache(blocks: int = 4, block_size: int = 16):
    return torch.zeros(blocks, block_size, 2, 64), torch.zeros(blocks, block_size, 2, 64)


def _decode(tables, lens, max_seq_len, cache=None):
    kc, vc = cache or _cache()
    fn = anyaccel.bind("attention.decode", SPEC)
    q = torch.randn(len(lens), 4, 64)
    return fn(q, kc, vc, torch.tensor(tables, dtype=I32), torch.tensor(lens, dtype=I32), max_seq_len, 0.125)


@pytest.mark.parametrize(
    ("tables", "lens", "max_seq_len", "message"),
    [
        ([[0, 4]], [20], 20, r"block_tables holds 4, outside \[0, 4\) \(the cache has 4 blocks\)"),
        ([[0, -1]], [20], 20, r"block_tables holds -1, outside \[0, 4\)"),
        ([[0, 1]], [33], 33, r"seq_lens holds 33, outside \[0, 33\) \(at most 2 blocks of 16"),
        ([[0, 1]], [20], 18, r"seq_lens holds 20, outside \[0, 19\) .*max_seq_len 18"),
        ([[0, 1]], [-3], 18, r"seq_lens holds -3"),
    ],
)
def test_decode_values(validate, tables, lens, max_seq_len, message):
    with pytest.raises(ContractError, match=rf"^attention\.decode: {message}"):
        _decode(tables, lens, max_seq_len)


def test_decode_cache_shape(validate):
    with pytest.raises(ContractError, match=r"^attention\.decode: k_cache must have shape \[8, 16, 2, 64\]"):
        _decode([[0, 1]], [20], 20, _cache(8, 8))


def test_decode_entries_past_the_last_page_are_not_checked(validate):
    assert torch.isfinite(_decode([[0, -1], [2, 3]], [16, 17], 17)).all()


def test_write_kv_slots(validate):
    kc, vc = _cache()
    fn = anyaccel.bind("attention.write_kv", SPEC)
    k = torch.randn(2, 2, 64)
    with pytest.raises(ContractError, match=r"^attention\.write_kv: slot_mapping holds 64, outside \[-1, 6"):
        fn(k, k, kc, vc, torch.tensor([3, 64]))
    with pytest.raises(ContractError, match=rf"^attention\.write_kv: slot_mapping holds {2**40}"):
        fn(k, k, kc, vc, torch.tensor([3, 2**40]))
    with pytest.raises(ContractError, match=r"^attention\.write_kv: slot_mapping names a slot twice"):
        fn(k, k, kc, vc, torch.tensor([3, 3]))
    fn(k, k, kc, vc, torch.tensor([-1, -1]))  # padding, twice, is fine


def test_prefill_lengths(validate):
    kc, vc = _cache()
    fn = anyaccel.bind("attention.prefill", SPEC)
    q, k = torch.randn(5, 4, 64), torch.randn(5, 2, 64)

    def prefill(cu, lens, max_q, max_len, tables=((0, 1),)):
        t, cu, lens = (torch.tensor(x, dtype=I32) for x in (tables, cu, lens))
        fn(q, k, k, kc, vc, t, cu, lens, max_q, max_len, 0.125)

    with pytest.raises(ContractError, match=r"^attention\.prefill: cu_seqlens_q must run from 0 to the 5"):
        prefill([0, 4], [4], 4, 4)
    with pytest.raises(ContractError, match=r"^attention\.prefill: cu_seqlens_q steps holds 5.*max_seqlen_q"):
        prefill([0, 5], [5], 4, 5)
    with pytest.raises(ContractError, match=r"^attention\.prefill: block_tables holds 9"):
        prefill([0, 5], [5], 5, 5, ((9, 1),))


def _moe_args(spec: MoESpec, ids):
    e, h, i = spec.num_experts, spec.hidden_size, spec.intermediate_size
    x, w13, w2 = torch.randn(1, h), torch.randn(e, 2 * i, h), torch.randn(e, h, i)
    return x, w13, w2, torch.ones(1, spec.top_k), torch.tensor([ids], dtype=I32)


def test_moe_expert_ids(validate):
    spec = MoESpec(torch.float32, num_experts=4, top_k=2, hidden_size=64, intermediate_size=32)
    fn = anyaccel.bind("moe.experts", spec)
    with pytest.raises(ContractError, match=r"^moe\.experts: topk_ids holds -1, outside \[0, 4\)"):
        fn(*_moe_args(spec, [0, -1]))
    with pytest.raises(ContractError, match=r"^moe\.experts: topk_ids holds 4, outside \[0, 4\)"):
        fn(*_moe_args(spec, [0, 4]))
    ep = MoESpec(torch.float32, 2, 2, 64, 32, expert_parallel=True)
    with pytest.raises(ContractError, match=r"^moe\.experts: expert_map holds 5, outside \[-1, 2\)"):
        anyaccel.bind("moe.experts", ep)(*_moe_args(ep, [0, 1]), "silu", torch.tensor([0, 5, -1], dtype=I32))


def test_moe_fp8_block_scales(validate):
    spec = MoESpec(torch.float32, 2, 1, 256, 128, quant="fp8_block")
    x, w13, w2, weights, ids = _moe_args(spec, [1])
    w13, w2 = w13.to(torch.float8_e4m3fn), w2.to(torch.float8_e4m3fn)
    fn = anyaccel.bind("moe.experts", spec)
    with pytest.raises(ContractError, match=r"^moe\.experts: w13_scale must have shape \[2, 2, 2\]"):
        fn(x, w13, w2, weights, ids, "silu", None, torch.ones(2, 2, 1), torch.ones(2, 2, 1))


@pytest.mark.parametrize(
    ("scales", "a_scale", "b_scale", "name"),
    [
        ("channel", torch.ones(3, 1), torch.ones(8, 1), "a_scale"),
        ("block", torch.ones(4, 3), torch.ones(8, 3), "b_scale"),
        ("tensor", torch.ones(1), torch.ones(8), "b_scale"),
    ],
)
def test_fp8_gemm_scale_shapes(validate, scales, a_scale, b_scale, name):
    fn = anyaccel.bind("quant.fp8_gemm", GemmSpec(torch.float32, scales, n=8, k=300))
    a, b = torch.zeros(4, 300).to(torch.float8_e4m3fn), torch.zeros(8, 300).to(torch.float8_e4m3fn)
    with pytest.raises(ContractError, match=rf"^quant\.fp8_gemm: {name} must have shape"):
        fn(a, b, a_scale, b_scale, torch.float32)


def test_rope_positions(validate):
    fn = anyaccel.bind("rope.apply", RopeSpec(torch.float32, 16, 16, True, 4, 2))
    with pytest.raises(ContractError, match=r"^rope\.apply: positions holds 8, outside \[0, 8\)"):
        fn(torch.randn(1, 4, 16), torch.randn(1, 2, 16), torch.tensor([8]), torch.randn(8, 16), True)


def test_without_validation_the_kernel_is_bound_unwrapped():
    fn = anyaccel.bind("attention.decode", SPEC)
    assert not hasattr(fn, "__wrapped__")
