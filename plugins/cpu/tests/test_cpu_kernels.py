"""The CPU provider's selection and the paths the conformance grid reaches only in part."""

from __future__ import annotations

import pytest
import torch
from anyaccel_cpu.kernels.moe import DENSE_MAX_TOKENS

import anyaccel
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.linear import LinearSpec
from anyaccel.ops.moe import MoESpec
from anyaccel.providers.reference import moe as reference_moe


def reasons(res) -> dict[str, str]:
    return {c.kernel.name: c.reason for c in res.candidates}


def test_selected_on_the_cpu_for_the_ops_it_serves():
    specs = {
        "attention.decode": AttentionSpec(torch.float32, 8, 2, 64),
        "attention.write_kv": AttentionSpec(torch.float32, 8, 2, 64),
        "linear.gemm": LinearSpec(torch.float32, 256, 128),
        "moe.experts": MoESpec(torch.float32, 16, 4, 128, 64),
    }
    for op, spec in specs.items():
        assert anyaccel.resolve(op, spec).selected.provider == "cpu", op


@pytest.mark.parametrize(
    ("op", "spec", "reason"),
    [
        ("attention.decode", AttentionSpec(torch.float32, 8, 2, 64, softcap=30.0), "no logit soft-capping"),
        ("attention.decode", AttentionSpec(torch.float32, 8, 2, 64, sinks=True), "no attention sinks"),
        ("attention.decode", AttentionSpec(torch.float32, 8, 2, 64, kv_layout="HND"), "reads KV layout NHD"),
        ("moe.experts", MoESpec(torch.float32, 128, 8, 128, 64), "made for E <= 8 * top_k"),
        ("moe.experts", MoESpec(torch.float32, 8, 2, 128, 64, quant="fp8_block"), "quant=fp8_block"),
        ("linear.gemm", LinearSpec(torch.bfloat16, 256, 128), "bfloat16"),
    ],
)
def test_declines_with_a_reason(op, spec, reason):
    res = anyaccel.resolve(op, spec)
    assert res.selected.provider != "cpu"
    assert reason in next(r for name, r in reasons(res).items() if name.startswith("cpu."))


def _experts(t: int, expert_map: torch.Tensor | None):
    e_local, e_global, k, h, i = 8, 16 if expert_map is not None else 8, 2, 64, 32
    g = torch.Generator().manual_seed(t)
    hidden = torch.randn(t, h, generator=g)
    w13, w2 = torch.randn(e_local, 2 * i, h, generator=g) / 8, torch.randn(e_local, h, i, generator=g) / 6
    ids = torch.stack([torch.randperm(e_global, generator=g)[:k] for _ in range(t)]).to(torch.int32)
    weights = torch.rand(t, k, generator=g)
    spec = MoESpec(torch.float32, e_local, k, h, i, expert_parallel=expert_map is not None)
    res = anyaccel.resolve("moe.experts", spec)
    assert res.selected.name == "cpu.dense_experts"
    packed = res.prepare_weights({"w13": w13, "w2": w2})
    got = res.fn(hidden, topk_weights=weights, topk_ids=ids, expert_map=expert_map, **packed)
    want = reference_moe.experts(hidden, w13, w2, weights, ids, expert_map=expert_map)
    return got, want


@pytest.mark.parametrize("t", [1, DENSE_MAX_TOKENS, DENSE_MAX_TOKENS + 1])
@pytest.mark.parametrize("expert_parallel", [False, True])
def test_dense_and_grouped_paths_give_the_reference(t, expert_parallel):
    expert_map = None
    if expert_parallel:  # this rank holds global experts 4..11; the others are remote
        expert_map = torch.full((16,), -1, dtype=torch.int32)
        expert_map[4:12] = torch.arange(8, dtype=torch.int32)
    got, want = _experts(t, expert_map)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_prepare_packs_the_experts_once_into_opaque_onednn_tensors():
    spec = MoESpec(torch.float32, 8, 2, 64, 32)
    res = anyaccel.resolve("moe.experts", spec)
    w13, w2 = torch.randn(8, 64, 64), torch.randn(8, 64, 32)
    packed = res.prepare_weights({"w13": w13, "w2": w2})
    assert packed["w13"].is_mkldnn and tuple(packed["w13"].shape) == (8 * 64, 64)
    assert packed["w2"].is_mkldnn and tuple(packed["w2"].shape) == (64, 8 * 32)
    torch.testing.assert_close(packed["w2"].to_dense().view(64, 8, 32).permute(1, 0, 2), w2)


def test_gemm_takes_empty_batches_and_a_bias():
    res = anyaccel.resolve("linear.gemm", LinearSpec(torch.float32, 48, 32))
    weight, bias = torch.randn(48, 32), torch.randn(48)
    packed = res.prepare_weights({"weight": weight})["weight"]
    assert res.fn(torch.randn(0, 32), packed).shape == (0, 48)
    x = torch.randn(3, 32)
    torch.testing.assert_close(res.fn(x, packed, bias), x @ weight.T + bias)


def test_write_kv_skips_padded_slots_and_decode_of_an_empty_sequence_is_zero():
    spec = AttentionSpec(torch.float32, 4, 2, 16, block_size=4)
    write_kv, decode = anyaccel.bind("attention.write_kv", spec), anyaccel.bind("attention.decode", spec)
    k_cache, v_cache = torch.zeros(3, 4, 2, 16), torch.zeros(3, 4, 2, 16)
    k, v = torch.randn(3, 2, 16), torch.randn(3, 2, 16)
    write_kv(k, v, k_cache, v_cache, torch.tensor([5, -1, 0]))
    torch.testing.assert_close(k_cache[1, 1], k[0])
    torch.testing.assert_close(v_cache[0, 0], v[2])
    assert k_cache.count_nonzero() == 2 * 2 * 16  # slot -1 wrote nothing
    tables, lens = torch.tensor([[1, 0], [2, 0]], dtype=torch.int32), torch.tensor([6, 0], dtype=torch.int32)
    out = decode(torch.randn(2, 4, 16), k_cache, v_cache, tables, lens, 6, 0.25)
    assert out[1].abs().max() == 0 and out[0].isfinite().all()
