"""Decode kernels read only what a sequence owns, and refuse what they cannot read safely: NaN in cache slots
another request owns (past this sequence's length, or behind table entries past its last page) never reaches
this request's output; out-of-range block ids and over-long seq_lens are errors, not clamped; the reference
MoE refuses expert ids outside its experts and the reference fp8 GEMM refuses scales of a shape it does not
define. The Triton decode runs under its interpreter here."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton kernel module is imported

import pytest  # noqa: E402
import torch  # noqa: E402

import anyaccel  # noqa: E402
from anyaccel.ops.attention import AttentionSpec  # noqa: E402
from anyaccel.providers.reference import moe as reference_moe  # noqa: E402
from anyaccel.providers.reference import quant as reference_quant  # noqa: E402
from anyaccel.providers.reference.attention import decode as reference_decode  # noqa: E402

DECODERS = ["reference.decode", "cpu.sdpa_decode", "cpu.native_decode", "triton.paged_decode"]
SPEC = AttentionSpec(torch.float32, 8, 2, 64, block_size=16)


def _decoder(name: str, spec: AttentionSpec):
    res = anyaccel.resolve("attention.decode", spec)
    candidate = next((c for c in res.candidates if c.kernel.name == name), None)
    if candidate is None:
        pytest.skip(f"{name} is not registered here")
    if not candidate.eligible and name != "triton.paged_decode":  # Triton: off its platforms, interpreted
        pytest.skip(f"{name}: {candidate.reason}")
    return candidate.kernel.load()(spec, anyaccel.get_platform())


def _batch(spec: AttentionSpec = SPEC):
    """Two sequences of 20 and 5 tokens: blocks 0-1 and 2 are theirs, block 3 another request's."""
    gen = torch.Generator().manual_seed(0)
    shape = (4, spec.block_size, spec.num_kv_heads, spec.head_dim)
    kc, vc = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    q = torch.randn(2, spec.num_q_heads, spec.head_dim, generator=gen)
    tables = torch.tensor([[0, 1, -1], [2, 3, 3]], dtype=torch.int32)  # entries past the last page: ignored
    return q, kc, vc, tables, torch.tensor([20, 5], dtype=torch.int32)


def _poison(kc: torch.Tensor, vc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN in every slot neither sequence owns: block 1 past token 20, block 2 past token 5, block 3."""
    kc, vc = kc.clone(), vc.clone()
    for cache in (kc, vc):
        cache[1, 4:] = cache[2, 5:] = cache[3] = float("nan")
    return kc, vc


@pytest.mark.parametrize("name", DECODERS)
def test_nan_in_slots_a_sequence_does_not_own_does_not_reach_its_output(name):
    decode = _decoder(name, SPEC)
    q, kc, vc, tables, lens = _batch()
    clean = decode(q, kc, vc, tables, lens, 20, SPEC.softmax_scale)
    poisoned = decode(q, *_poison(kc, vc), tables, lens, 20, SPEC.softmax_scale)
    assert torch.isfinite(poisoned).all()
    torch.testing.assert_close(poisoned, clean, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["reference.decode", "cpu.sdpa_decode"])
def test_nan_outside_a_sliding_window_does_not_reach_the_output(name):
    spec = AttentionSpec(torch.float32, 8, 2, 64, block_size=16, sliding_window=8)
    decode = _decoder(name, spec)
    q, kc, vc, tables, lens = _batch(spec)
    poisoned_k, poisoned_v = _poison(kc, vc)
    poisoned_k[0, :12] = poisoned_v[0, :12] = float("nan")  # sequence 0's tokens before its window
    out = decode(q, poisoned_k, poisoned_v, tables, lens, 20, spec.softmax_scale, 8)
    torch.testing.assert_close(
        out, decode(q, kc, vc, tables, lens, 20, spec.softmax_scale, 8), rtol=0, atol=0
    )


@pytest.mark.parametrize("name", ["reference.decode", "cpu.sdpa_decode", "cpu.native_decode"])
@pytest.mark.parametrize(
    ("tables", "lens", "max_seq_len", "message"),
    [
        ([[0, 4, -1], [2, 3, 3]], [20, 5], 20, r"block( table|_tables)"),  # block 4 of 4
        ([[0, -1, -1], [2, 3, 3]], [20, 5], 20, r"block( table|_tables)"),  # a used entry is -1
        ([[0, 1, -1], [2, 3, 3]], [49, 5], 49, r"seq_lens|longer than its table"),  # 3 pages of 16 hold 48
        ([[0, 1, -1], [2, 3, 3]], [20, 5], 16, r"seq_lens|longer than"),  # beyond max_seq_len
    ],
)
def test_decode_refuses_block_ids_and_lengths_it_cannot_read(name, tables, lens, max_seq_len, message):
    if name == "cpu.native_decode" and max_seq_len == 16:
        pytest.skip("the C kernel reads each sequence's own length; max_seq_len only sizes a grid")
    decode = _decoder(name, SPEC)
    q, kc, vc, _, _ = _batch()
    tables, lens = torch.tensor(tables, dtype=torch.int32), torch.tensor(lens, dtype=torch.int32)
    with pytest.raises(ValueError, match=rf"attention\.decode: .*({message})"):
        decode(q, kc, vc, tables, lens, max_seq_len, SPEC.softmax_scale)


def test_padded_rows_still_give_zeros():
    q, kc, vc, tables, _ = _batch()
    out = reference_decode(SPEC, anyaccel.get_platform())(
        q, kc, vc, tables, torch.tensor([0, 5], dtype=torch.int32), 5, SPEC.softmax_scale
    )
    assert out[0].abs().sum() == 0 and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("ids", "held"), [([[0, -1]], "-1"), ([[0, 4]], "4"), ([[0, 2**32 + 1]], str(2**32 + 1))]
)
def test_reference_moe_refuses_expert_ids_outside_its_experts(ids, held):
    x, w13, w2 = torch.randn(1, 8), torch.randn(4, 6, 8), torch.randn(4, 8, 3)
    with pytest.raises(ValueError, match=rf"moe\.experts: topk_ids holds {held}, outside \[0, 4\)"):
        reference_moe.experts(x, w13, w2, torch.ones(1, 2), torch.tensor(ids))


def test_reference_moe_refuses_an_expert_map_naming_experts_it_does_not_hold():
    x, w13, w2 = torch.randn(1, 8), torch.randn(2, 6, 8), torch.randn(2, 8, 3)
    ids = torch.tensor([[0, 3]], dtype=torch.int32)
    with pytest.raises(ValueError, match=r"moe\.experts: expert_map holds 2, outside \[-1, 2\)"):
        reference_moe.experts(x, w13, w2, torch.ones(1, 2), ids, expert_map=torch.tensor([0, 1, -1, 2]))


@pytest.mark.parametrize(
    ("a_scale", "b_scale", "name"),
    [
        (torch.ones(3, 1), torch.ones(5, 1), "a_scale"),  # 3 row scales for 4 rows
        (torch.ones(4, 1), torch.ones(2, 4), "b_scale"),  # 4 column scales for 300 columns: not 1, 3 or 300
        (torch.ones(4), torch.ones(5, 1), "a_scale"),  # 1-D of more than one element
    ],
)
def test_reference_fp8_gemm_refuses_mis_shaped_scales(a_scale, b_scale, name):
    a = torch.randn(4, 300).to(torch.float8_e4m3fn)
    b = torch.randn(5, 300).to(torch.float8_e4m3fn)
    with pytest.raises(ValueError, match=rf"quant\.fp8_gemm: {name} of shape .* cannot scale"):
        reference_quant.fp8_gemm(a, b, a_scale, b_scale, torch.float32)
    # the shapes the contract defines still work: per tensor, per row/column, 128-blocks
    reference_quant.fp8_gemm(a, b, torch.ones(1), torch.ones(5, 3), torch.float32)
