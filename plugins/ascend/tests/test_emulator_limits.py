"""The torch_npu emulator refuses what torch_npu's documentation rules out (gates.py cites each source), and
computes what it documents: each limit that a kernel gate mirrors has a case here."""

from __future__ import annotations

import pytest
import torch
from anyaccel_ascend import gates
from anyaccel_ascend.emulators import torch_npu as npu

import anyaccel

NpuError = npu.NpuError


@pytest.fixture
def on_310p(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "npu:ascend310p")
    anyaccel.reset()
    yield
    anyaccel.reset()


def _mask():
    return torch.triu(torch.ones(2048, 2048, dtype=torch.bool), diagonal=1)


def _fia(**overrides):
    """A valid paged TND call: 2 sequences (3 and 1 new tokens over 130 and 5 keys), Hq 4, Hkv 2, D 64."""
    g = torch.Generator().manual_seed(0)
    bs, d = overrides.pop("block_size", 128), overrides.pop("d", 64)
    dtype = overrides.pop("dtype", torch.float16)
    kwargs = dict(
        atten_mask=_mask(),
        actual_seq_lengths=[3, 4],
        actual_seq_lengths_kv=[130, 5],
        block_table=torch.tensor([[0, 1], [2, -1]], dtype=torch.int32),
        num_heads=4,
        num_key_value_heads=2,
        scale=d**-0.5,
        input_layout="TND",
        sparse_mode=3,
        block_size=bs,
    )
    kwargs.update(overrides)
    q = torch.randn(4, 4, d, generator=g).to(dtype)
    cache = torch.randn(3, bs, 2 * d, generator=g).to(dtype)
    return lambda: npu.npu_fused_infer_attention_score(q, cache, cache.clone(), **kwargs)


def test_fia_valid_call_returns_a_tuple():
    out, lse = _fia()()
    assert out.shape == (4, 4, 64) and out.dtype == torch.float16 and lse.shape == (1,)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"block_size": 64}, "multiple of 128"),  # prompts need 128..512 pages
        ({"dtype": torch.float32}, "float16 or bfloat16"),
        ({"d": 72}, "multiple of 16"),
        ({"input_layout": "BSH"}, "not emulated"),
        ({"atten_mask": None}, "2048x2048"),
        ({"atten_mask": torch.ones(2048, 2048, dtype=torch.bool).tril()}, "above the diagonal"),
        ({"actual_seq_lengths": torch.tensor([3, 4])}, "host list"),
        ({"actual_seq_lengths": [3, 5]}, "T=4"),
        ({"actual_seq_lengths_kv": None}, "actual_seq_lengths_kv"),
        ({"sparse_mode": 4, "pre_tokens": -10, "next_tokens": 0}, "pre_tokens"),
        ({"num_key_value_heads": 3}, "multiple"),
        ({"quant_scale2": torch.ones(1)}, "not emulated"),
    ],
)
def test_fia_rejects(overrides, message):
    with pytest.raises(NpuError, match=message):
        _fia(**overrides)()


def test_fia_decode_only_batch_accepts_16_token_pages():
    q = torch.randn(2, 4, 64, dtype=torch.float16)
    cache = torch.randn(4, 16, 128, dtype=torch.float16)
    out, _ = npu.npu_fused_infer_attention_score(
        q,
        cache,
        cache,
        actual_seq_lengths=[1, 2],
        actual_seq_lengths_kv=[20, 3],
        num_heads=4,
        num_key_value_heads=2,
        input_layout="TND",
        block_size=16,
        block_table=torch.tensor([[0, 1], [2, 3]], dtype=torch.int32),
    )
    assert out.shape == q.shape


def test_fia_band_keeps_pre_tokens_plus_one_keys():
    """sparse_mode 4, pre_tokens=W-1: the last query sees exactly its W latest keys."""
    d, s = 16, 10
    k = torch.zeros(1, 128, d, dtype=torch.float16)
    v = torch.zeros(1, 128, d, dtype=torch.float16)
    v[0, :s, 0] = torch.arange(s, dtype=torch.float16)  # value = position
    q = torch.zeros(1, 1, d, dtype=torch.float16)  # uniform attention over the visible keys
    out, _ = npu.npu_fused_infer_attention_score(
        q,
        k,
        v,
        atten_mask=_mask(),
        actual_seq_lengths=[1],
        actual_seq_lengths_kv=[s],
        num_heads=1,
        input_layout="TND",
        sparse_mode=4,
        pre_tokens=2,
        next_tokens=0,
        block_size=128,
        block_table=torch.tensor([[0]], dtype=torch.int32),
    )
    assert float(out[0, 0, 0]) == pytest.approx((7 + 8 + 9) / 3)


def test_v2_sink_limits():
    q = torch.randn(1, 2, 192, dtype=torch.bfloat16)
    cache = torch.randn(1, 128, 2 * 192, dtype=torch.bfloat16)
    common = dict(
        actual_seq_qlen=[1],
        actual_seq_kvlen=[3],
        num_query_heads=2,
        num_key_value_heads=2,
        input_layout="TND",
        block_size=128,
        block_table=torch.tensor([[0]], dtype=torch.int32),
    )
    with pytest.raises(NpuError, match="<= 128"):
        npu.npu_fused_infer_attention_score_v2(
            q, cache, cache, learnable_sink=torch.zeros(2, dtype=torch.bfloat16), **common
        )
    with pytest.raises(NpuError, match="bfloat16"):
        npu.npu_fused_infer_attention_score_v2(q, cache, cache, learnable_sink=torch.zeros(2), **common)


def test_scatter_kv_rejects_padded_slots_and_nz_mode():
    k = torch.randn(3, 2, 16)
    cache = torch.zeros(2, 128, 2, 16)
    with pytest.raises(NpuError, match="slot values"):
        npu.npu_scatter_pa_kv_cache(k, k, cache, cache.clone(), torch.tensor([0, -1, 5]), cache_mode="Norm")
    with pytest.raises(npu.NotEmulated, match="PA_NZ"):
        npu.npu_scatter_pa_kv_cache(k, k, cache, cache.clone(), torch.tensor([0, 1, 5]))
    npu.npu_scatter_pa_kv_cache(k, k, cache, cache.clone(), torch.tensor([0, 1, 200]), cache_mode="Norm")
    assert torch.equal(cache[1, 72], k[2])


def test_paged_attention_310p_limits(on_310p):
    q = torch.randn(1, 2, 128, dtype=torch.float16)
    nz = torch.zeros(1, 2 * 128 // 16, 128, 16, dtype=torch.float16)
    out = torch.empty_like(q)
    table, lens = torch.tensor([[0]], dtype=torch.int32), torch.tensor([5], dtype=torch.int32)
    npu._npu_paged_attention(q, nz, nz, 2, 2, 0.1, table, lens, out)
    with pytest.raises(NpuError, match="bfloat16"):
        npu._npu_paged_attention(q.bfloat16(), nz.bfloat16(), nz.bfloat16(), 2, 2, 0.1, table, lens, out)
    big = torch.zeros(1, 2 * 256 // 16, 128, 16, dtype=torch.float16)
    with pytest.raises(NpuError, match="128 \\* 128"):
        npu._npu_paged_attention(
            torch.randn(1, 2, 256).half(), big, big, 2, 2, 0.1, table, lens, torch.empty(1, 2, 256).half()
        )
    with pytest.raises(NpuError, match=">= 1"):
        npu._npu_paged_attention(q, nz, nz, 2, 2, 0.1, table, torch.tensor([0], dtype=torch.int32), out)


def test_310p_has_no_bfloat16_and_no_scatter(on_310p):
    with pytest.raises(NpuError, match="310P"):
        npu.npu_rms_norm(torch.randn(2, 8, dtype=torch.bfloat16), torch.ones(8, dtype=torch.bfloat16))
    with pytest.raises(NpuError, match="310P"):
        npu.npu_scatter_pa_kv_cache(
            *(torch.zeros(1, 1, 16),) * 2,
            *(torch.zeros(1, 16, 1, 16),) * 2,
            torch.tensor([0]),
            cache_mode="Norm",
        )


def test_310p_gating_top_k_softmax_takes_float16_only(on_310p):
    logits = torch.randn(3, 8)
    with pytest.raises(NpuError, match="float16"):
        npu.npu_moe_gating_top_k_softmax(logits, None, k=2)
    y, ids, _ = npu.npu_moe_gating_top_k_softmax(logits.half(), None, k=2)
    assert y.dtype == torch.float16 and ids.shape == (3, 2)


def test_norms_return_torch_npu_tuples():
    x, r, w = torch.randn(3, 64), torch.randn(3, 64), torch.randn(64)
    y, rstd = npu.npu_rms_norm(x, w, 1e-6)
    assert y.shape == x.shape and rstd.shape == (3, 1) and rstd.dtype == torch.float32
    y2, rstd2, added = npu.npu_add_rms_norm(x, r, w, 1e-6)
    torch.testing.assert_close(added, x + r)
    torch.testing.assert_close(y2, npu.npu_rms_norm(x + r, w, 1e-6)[0])
    with pytest.raises(NpuError, match="2-8 dims"):
        npu.npu_rms_norm(torch.randn(64), w)


def test_mrope_limits():
    q, k = torch.randn(2, 4 * 64, dtype=torch.float16), torch.randn(2, 64, dtype=torch.float16)
    pos = torch.tensor([0, 5])
    cache = torch.randn(16, 48, dtype=torch.float16)
    with pytest.raises(NpuError, match="multiple of 32"):
        npu.npu_mrope(pos, q, k, cache, 64)
    with pytest.raises(NpuError, match="query's dtype"):
        npu.npu_mrope(pos, q, k, torch.randn(16, 64), 64)
    with pytest.raises(NpuError, match="rotary_mode"):
        npu.npu_mrope(pos, q, k, cache[:, :32], 64, rotary_mode="interleaved")
    with pytest.raises(NpuError, match="outside"):
        npu.npu_mrope(torch.tensor([0, 16]), q, k, cache[:, :32], 64)


def test_apply_rotary_head_dims():
    q = torch.randn(2, 1, 4, 80)
    cos = torch.randn(2, 1, 1, 80)
    with pytest.raises(NpuError, match="64 or 128"):
        npu.npu_apply_rotary_pos_emb(q, q.clone(), cos, cos)


def test_moe_routing_and_unpermute_round_trip():
    """init_routing_v2 (row_idx_type 1) then unpermute with probs of 1: every token back, times k."""
    x = torch.randn(5, 8, dtype=torch.bfloat16)
    ids = torch.tensor([[0, 2], [1, 0], [2, 2 - 1], [0, 1], [2, 0]], dtype=torch.int32)
    rows, idx, counts, _ = npu.npu_moe_init_routing_v2(
        x,
        ids,
        active_num=10,
        expert_num=3,
        expert_tokens_num_type=1,
        expert_tokens_num_flag=True,
        active_expert_range=[0, 3],
        row_idx_type=1,
    )
    assert counts.tolist() == [4, 3, 3] and counts.dtype == torch.int64
    out = npu.npu_moe_token_unpermute(rows, idx, probs=torch.ones(5, 2, dtype=torch.bfloat16))
    torch.testing.assert_close(out, (2 * x.float()).bfloat16())
    with pytest.raises(NpuError, match="bf16"):
        npu.npu_moe_token_unpermute(rows.half(), idx)


def test_grouped_matmul_groups_must_cover_x():
    x, w = torch.randn(5, 4), torch.randn(2, 4, 3)
    with pytest.raises(NpuError, match="cover"):
        npu.npu_grouped_matmul(
            [x], [w], group_list=torch.tensor([2, 2]), split_item=2, group_type=0, group_list_type=1
        )
    (y,) = npu.npu_grouped_matmul(
        [x], [w], group_list=torch.tensor([2, 3]), split_item=2, group_type=0, group_list_type=1
    )
    torch.testing.assert_close(y, torch.cat((x[:2] @ w[0], x[2:] @ w[1])))


def test_gating_top_k_group_limits():
    with pytest.raises(NpuError, match="more than 2"):
        npu.npu_moe_gating_top_k(torch.randn(2, 16), 2, k_group=2, group_count=8, norm_type=1)
    with pytest.raises(npu.NotEmulated):
        npu.npu_moe_gating_top_k(torch.randn(2, 16), 2, norm_type=0)


def test_int4_pack_round_trips_through_weight_quant_batchmatmul():
    w = torch.randint(-8, 8, (64, 16), dtype=torch.int32)
    packed = npu.npu_convert_weight_to_int4pack(w)
    assert packed.shape == (64, 2)
    x = torch.randn(3, 64, dtype=torch.float16)
    scale = torch.rand(2, 16, dtype=torch.float16) + 0.5
    got = npu.npu_weight_quant_batchmatmul(x, packed, scale, antiquant_group_size=32)
    want = x.float() @ (w.float() * scale.float().repeat_interleave(32, 0))
    torch.testing.assert_close(got.float(), want, rtol=2e-3, atol=2e-2)
    with pytest.raises(NpuError, match="multiple of 32"):
        npu.npu_weight_quant_batchmatmul(
            x, packed, torch.ones(4, 16, dtype=torch.float16), antiquant_group_size=16
        )


def test_gate_tables_match_the_emulator():
    """The block sizes and alignment the kernels declare are the ones the emulator enforces."""
    assert {128} == gates.FIA_BLOCK_SIZES
    assert gates.FIA_HEAD_DIM_ALIGN == 16 and gates.FIA_MAX_HEAD_DIM == 512
    assert gates.PA_BLOCK_TIMES_HEAD == 128 * 128 and {128} == gates.NZ_BLOCK_SIZES
