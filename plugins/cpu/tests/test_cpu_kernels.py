"""The CPU provider's selection and the paths the conformance grid reaches only in part."""

from __future__ import annotations

import functools

import pytest
import torch
from anyaccel_cpu import native, replay

import anyaccel
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.base import ContractError
from anyaccel.ops.linear import LinearSpec
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.norm import NormSpec
from anyaccel.ops.rope import RopeSpec
from anyaccel.providers.reference import attention as reference_attention
from anyaccel.providers.reference import moe as reference_moe
from anyaccel.providers.reference import norm as reference_norm


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
        ("attention.decode", AttentionSpec(torch.bfloat16, 8, 2, 64, softcap=30.0), "no logit soft-capping"),
        ("attention.decode", AttentionSpec(torch.bfloat16, 8, 2, 64, sinks=True), "no attention sinks"),
        ("attention.decode", AttentionSpec(torch.float32, 8, 2, 64, kv_layout="HND"), "reads KV layout NHD"),
        ("moe.experts", MoESpec(torch.float32, 8, 2, 128, 64, quant="fp8_block"), "quant=fp8_block"),
        ("linear.gemm", LinearSpec(torch.bfloat16, 256, 128), "bfloat16"),
    ],
)
def test_declines_with_a_reason(op, spec, reason):
    res = anyaccel.resolve(op, spec)
    assert res.selected.provider != "cpu"
    assert any(reason in r for name, r in reasons(res).items() if name.startswith("cpu.")), reasons(res)


def test_without_a_c_compiler_the_c_kernels_decline_and_say_why(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(native, "_load", functools.cache(native._load.__wrapped__))
    res = anyaccel.resolve("moe.experts", MoESpec(torch.float32, 8, 2, 64, 32))
    assert res.selected.provider == "reference"
    assert "no C compiler to build the CPU kernels" in reasons(res)["cpu.native_experts"]
    # the torch-composed kernels stay available
    assert anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64)).selected.name == "cpu.rms_norm"


def _experts(t: int, expert_map: torch.Tensor | None, activation: str = "silu"):
    e_local, e_global, k, h, i = 8, 16 if expert_map is not None else 8, 2, 72, 40
    g = torch.Generator().manual_seed(t)
    hidden = torch.randn(t, h, generator=g)
    w13, w2 = torch.randn(e_local, 2 * i, h, generator=g) / 8, torch.randn(e_local, h, i, generator=g) / 6
    ids = torch.stack([torch.randperm(e_global, generator=g)[:k] for _ in range(t)]).to(torch.int32)
    weights = torch.rand(t, k, generator=g)
    spec = MoESpec(torch.float32, e_local, k, h, i, activation, expert_parallel=expert_map is not None)
    res = anyaccel.resolve("moe.experts", spec)
    assert res.selected.name == "cpu.native_experts"
    fn = res.fn
    args = (hidden, w13, w2, weights, ids, activation, expert_map)
    return fn, args, reference_moe.experts(*args)


@pytest.mark.parametrize("t", [1, 4, 5, 133])
@pytest.mark.parametrize("expert_parallel", [False, True])
def test_experts_match_the_reference_for_any_batch(t, expert_parallel):
    expert_map = None
    if expert_parallel:  # this rank holds global experts 4..11; the others are remote
        expert_map = torch.full((16,), -1, dtype=torch.int32)
        expert_map[4:12] = torch.arange(8, dtype=torch.int32)
    fn, args, want = _experts(t, expert_map)
    torch.testing.assert_close(fn(*args), want, rtol=1e-5, atol=1e-5)


def test_experts_do_not_depend_on_the_thread_count():
    fn, args, _ = _experts(67, None, "gelu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fn(*args)
        torch.set_num_threads(max(threads, 2))
        assert torch.equal(fn(*args), one)
    finally:
        torch.set_num_threads(threads)


def test_c_kernels_refuse_what_would_read_out_of_bounds():
    fn, (hidden, w13, w2, weights, ids, act, _), _ = _experts(3, None)
    with pytest.raises(ValueError, match="moe.experts: topk_ids .* outside 8 experts"):
        fn(hidden, w13, w2, weights, ids + 8, act)
    with pytest.raises(ContractError, match=r"moe.experts: w2 must have shape \[8, 72, 40\]"):
        fn(hidden, w13, w2[:, :, :8], weights, ids, act)
    spec = AttentionSpec(torch.float32, 4, 2, 16, block_size=4)
    decode, write_kv = anyaccel.bind("attention.decode", spec), anyaccel.bind("attention.write_kv", spec)
    k_cache = v_cache = torch.zeros(3, 4, 2, 16)
    lens = torch.tensor([6], dtype=torch.int32)
    with pytest.raises(ValueError, match="attention.decode: a block table names a block outside"):
        decode(
            torch.randn(1, 4, 16), k_cache, v_cache, torch.tensor([[1, 3]], dtype=torch.int32), lens, 6, 0.25
        )
    with pytest.raises(ValueError, match=r"attention.write_kv: a slot is outside \[-1, 12\)"):
        write_kv(torch.randn(1, 2, 16), torch.randn(1, 2, 16), k_cache, v_cache, torch.tensor([12]))
    rope = anyaccel.bind("rope.apply", RopeSpec(torch.float32, 16, 16, True, 4, 2))
    with pytest.raises(ValueError, match="rope.apply: a position is outside the cos/sin cache's 8 rows"):
        rope(torch.randn(1, 4, 16), torch.randn(1, 2, 16), torch.tensor([8]), torch.randn(8, 16), True)


def test_norms_read_per_head_rows_of_a_fused_projection_in_place():
    qkv = torch.randn(5, 3 * 4 * 24)
    heads = qkv[:, : 4 * 24].view(5, 4, 24)  # row strides (288, 24): not contiguous
    weight = torch.randn(24)
    res = anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 24))
    assert res.selected.name == "cpu.native_rms_norm"
    fn = res.fn
    torch.testing.assert_close(fn(heads, weight, 1e-6), reference_norm.rms_norm(heads, weight, 1e-6))
    x, residual = torch.randn(7, 3, 40)[:, 1], torch.randn(7, 40)
    want_x, want_residual = x.clone(), residual.clone()
    reference_norm.add_rms_norm(want_x, want_residual, weight[:1].expand(40).contiguous(), 1e-5)
    anyaccel.bind("norm.add_rms_norm", NormSpec(torch.float32, 40))(
        x, residual, weight[:1].expand(40).contiguous(), 1e-5
    )
    torch.testing.assert_close((x, residual), (want_x, want_residual))


@pytest.mark.parametrize("m", [1, 5, 15, 16, 40])
def test_native_gemm_reads_strided_rows_with_odd_sizes(m):
    res = anyaccel.resolve("linear.gemm", LinearSpec(torch.float32, 67, 1001))
    assert res.selected.name == "cpu.native_gemm"
    x = torch.randn(m, 1100)[:, 50:1051]  # rows 1100 floats apart
    weight, bias = torch.randn(67, 1001), torch.randn(67)
    torch.testing.assert_close(res.fn(x, weight, bias), x @ weight.T + bias, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(res.fn(x, weight), x @ weight.T, rtol=1e-5, atol=1e-4)
    # non-contiguous weight and bias (copied for the call, and kept alive through it)
    weight_t, bias_strided = weight.T.contiguous().T, torch.randn(134)[::2]
    torch.testing.assert_close(
        res.fn(x, weight_t, bias_strided), x @ weight.T + bias_strided, rtol=1e-5, atol=1e-4
    )


def test_onednn_gemm_takes_empty_batches_and_a_bias(monkeypatch):
    monkeypatch.setenv("ANYACCEL_KERNELS", "linear.gemm=cpu.onednn_gemm")
    anyaccel.reset()
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


@pytest.mark.parametrize("batch", [1, 2, 9])
def test_decode_splits_query_heads_when_there_are_few_kv_heads(batch):
    """A (sequence, KV head) item per thread would leave threads idle at batch 1 of a 3-KV-head model: each
    query head is then an item of its own. Both ways (1-2 sequences: split; 9: not) match the reference."""
    spec = AttentionSpec(torch.float32, 9, 3, 64, block_size=16)
    decode = anyaccel.bind("attention.decode", spec)
    g = torch.Generator().manual_seed(batch)
    k_cache, v_cache = torch.randn(40, 16, 3, 64, generator=g), torch.randn(40, 16, 3, 64, generator=g)
    q = torch.randn(batch, 9, 64, generator=g)
    tables = torch.randperm(40, generator=g)[: batch * 4].reshape(batch, 4).int()
    lens = torch.randint(1, 64, (batch,), generator=g).int()
    out = decode(q, k_cache, v_cache, tables, lens, 64, 0.125)
    for b in range(batch):
        n = int(lens[b])
        k = k_cache[tables[b].long()].reshape(-1, 3, 64)[:n].repeat_interleave(3, dim=1)  # [n, 9, 64]
        v = v_cache[tables[b].long()].reshape(-1, 3, 64)[:n].repeat_interleave(3, dim=1)
        p = (torch.einsum("hd,nhd->hn", q[b].double(), k.double()) * 0.125).softmax(-1)
        want = torch.einsum("hn,nhd->hd", p, v.double())
        torch.testing.assert_close(out[b].double(), want, rtol=1e-5, atol=1e-5)


def test_the_build_cache_key_covers_the_cpu_the_compiler_and_the_sources(monkeypatch, tmp_path):
    generated = replay.source(native.SIGNATURES)
    key = native._build_key(["cc"], generated)
    monkeypatch.setattr(
        native, "_cpu_signature", lambda: "flags: sse2"
    )  # a -march=native build of another CPU
    assert native._build_key(["cc"], generated) != key
    monkeypatch.undo()
    assert native._build_key(["cc"], generated + "\n") != key  # the generated replay dispatch
    sources = tmp_path / "csrc"
    sources.mkdir()
    for source in native.SOURCES.iterdir():
        (sources / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(native, "SOURCES", sources)
    assert native._build_key(["cc"], generated) == key
    (sources / "norm.c").write_text((sources / "norm.c").read_text() + "\n")
    assert native._build_key(["cc"], generated) != key


@pytest.mark.parametrize(
    ("cache_dtype", "causal"), [(torch.float8_e4m3fn, True), (torch.bfloat16, False), (torch.float32, True)]
)
def test_sdpa_prefill_reads_a_cached_prefix_like_the_reference(cache_dtype, causal):
    """Prefix pages from the cache (fp8 dequantized by its scale) ahead of the new tokens, GQA, a window
    shorter than the sequence (causal) or none: what the conformance grid does not combine for NHD caches."""
    dtype = torch.bfloat16 if cache_dtype != torch.float32 else torch.float32
    window = 20 if causal else -1
    spec = AttentionSpec(
        dtype, 6, 2, 32, block_size=16, kv_dtype=cache_dtype, causal=causal, sliding_window=window
    )
    prefill = anyaccel.bind("attention.prefill", spec)
    assert anyaccel.resolve("attention.prefill", spec).selected.name == "cpu.sdpa_prefill"
    g = torch.Generator().manual_seed(3)
    news, cached = (5, 40), (37, 0)
    k_cache = (torch.randn(12, 16, 2, 32, generator=g) * 2).to(cache_dtype)
    v_cache = (torch.randn(12, 16, 2, 32, generator=g) * 2).to(cache_dtype)
    scales = (torch.tensor(0.5), torch.tensor(0.25)) if cache_dtype == torch.float8_e4m3fn else (None, None)
    tables = torch.tensor([[7, 2, 9, 0], [4, 11, 3, -1]], dtype=torch.int32)
    q = torch.randn(sum(news), 6, 32, generator=g).to(dtype)
    k, v = (torch.randn(sum(news), 2, 32, generator=g).to(dtype) for _ in range(2))
    cu = torch.tensor([0, news[0], sum(news)], dtype=torch.int32)
    lens = torch.tensor([n + c for n, c in zip(news, cached, strict=True)], dtype=torch.int32)
    args = (q, k, v, k_cache, v_cache, tables, cu, lens, max(news), 64, 0.2)
    kwargs = dict(causal=causal, sliding_window=window, k_scale=scales[0], v_scale=scales[1])
    want = reference_attention._specialised("prefill", "NHD")(*args, **kwargs)
    torch.testing.assert_close(prefill(*args, **kwargs), want, rtol=2e-2, atol=2e-2)
