"""The CPU plugin's C kernels on inputs sized to break them: no buffer sized by the input lives on a thread's
stack (a block size of 64K tokens, 2M experts), the decode kernel reads the cache with the block size its spec
was bound for, and ids wider than the kernel reads are range-checked in their own width (an int64 id of
2**32 + 1 is refused, not read as 1)."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.base import ContractError
from anyaccel.ops.moe import MoESpec, TopKSpec
from anyaccel.providers.reference.attention import decode as reference_decode

pytest.importorskip("anyaccel_cpu")

WIDE = 2**32 + 1  # read as 1 once narrowed to int32


def _kernel(op: str, name: str, spec):
    res = anyaccel.resolve(op, spec)
    candidate = next(c for c in res.candidates if c.kernel.name == name)
    if not candidate.eligible:
        pytest.skip(f"{name}: {candidate.reason}")
    target = candidate.kernel.load()
    return target(spec, anyaccel.get_platform()) if candidate.kernel.factory else target


def _decode_inputs(spec: AttentionSpec, blocks: int, lens: list[int]):
    gen = torch.Generator().manual_seed(0)
    shape = (blocks, spec.block_size, spec.num_kv_heads, spec.head_dim)
    q = torch.randn(len(lens), spec.num_q_heads, spec.head_dim, generator=gen)
    kc, vc = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    width = max(-(-n // spec.block_size) for n in lens)
    tables = torch.arange(len(lens) * width, dtype=torch.int32).view(len(lens), width) % blocks
    return q, kc, vc, tables, torch.tensor(lens, dtype=torch.int32)


def test_paged_decode_with_a_64k_token_block_and_16_query_heads_per_kv_head():
    # 16 x 65536 floats of scores: 4 MiB, more than an OpenMP thread's stack holds
    spec = AttentionSpec(torch.float32, 16, 1, 64, block_size=65536)
    q, kc, vc, tables, lens = _decode_inputs(spec, 1, [70000 - 4465, 3])
    tables = tables[:, :1]
    args = (q, kc, vc, tables, lens, int(lens.max()), spec.softmax_scale)
    out = _kernel("attention.decode", "cpu.native_decode", spec)(*args)
    want = reference_decode(spec, anyaccel.get_platform())(*args)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4)


def test_an_engine_with_a_64k_token_block_generates(tiny_checkpoints):
    from anyaccel.models import LLM, SamplingParams

    llm = LLM(tiny_checkpoints("Qwen3ForCausalLM"), dtype=torch.float32, block_size=65536, progress=False)
    assert llm.runner.block_size == 65536
    out = llm.generate([[1, 2, 3]], SamplingParams(max_tokens=3, temperature=0.0))
    assert len(out[0].token_ids) == 3


def test_the_decode_kernel_refuses_a_cache_whose_block_size_is_not_its_specs():
    spec = AttentionSpec(torch.float32, 4, 2, 64, block_size=16)
    q, kc, vc, tables, lens = _decode_inputs(spec, 4, [20])
    kc, vc = kc.view(8, 8, 2, 64), vc.view(8, 8, 2, 64)
    with pytest.raises(ContractError, match=r"attention\.decode: k_cache must have shape \[\*, 16, 2, 64\]"):
        _kernel("attention.decode", "cpu.native_decode", spec)(q, kc, vc, tables, lens, 20, 0.125)


@pytest.mark.parametrize("argument", ["block_tables", "seq_lens"])
def test_decode_ids_are_checked_in_their_own_width(argument):
    spec = AttentionSpec(torch.float32, 4, 2, 64, block_size=16)
    q, kc, vc, tables, lens = _decode_inputs(spec, 4, [20])
    tables, lens = tables.long(), lens.long()
    (tables if argument == "block_tables" else lens)[0, ...].view(-1)[0] = WIDE
    with pytest.raises(ValueError, match=rf"attention\.decode: {argument} holds {WIDE}, outside torch.int32"):
        _kernel("attention.decode", "cpu.native_decode", spec)(q, kc, vc, tables, lens, 20, 0.125)


def test_write_kv_slots_of_another_width_are_read_exactly():
    spec = AttentionSpec(torch.float32, 4, 2, 64, block_size=16)
    kc, vc = torch.zeros(2, 16, 2, 64), torch.zeros(2, 16, 2, 64)
    k = torch.randn(2, 2, 64)
    write = _kernel("attention.write_kv", "cpu.native_write_kv", spec)
    write(k, k, kc, vc, torch.tensor([3, -1], dtype=torch.int32))
    assert torch.equal(kc.view(-1, 2, 64)[3], k[0]) and kc.count_nonzero() == 128
    with pytest.raises(ValueError, match="slot is outside"):
        write(k, k, kc, vc, torch.tensor([3, 2**40]))


def test_expert_ids_are_checked_in_their_own_width():
    spec = MoESpec(torch.float32, num_experts=4, top_k=1, hidden_size=64, intermediate_size=32)
    experts = _kernel("moe.experts", "cpu.native_experts", spec)
    x, w13, w2 = torch.randn(2, 64), torch.randn(4, 64, 64), torch.randn(4, 64, 32)
    weights = torch.ones(2, 1)
    with pytest.raises(ValueError, match=rf"moe\.experts: topk_ids holds {WIDE}"):
        experts(x, w13, w2, weights, torch.tensor([[1], [WIDE]]))
    with pytest.raises(ValueError, match=r"moe\.experts: topk_ids .* names an expert outside 4 experts"):
        experts(x, w13, w2, weights, torch.tensor([[1], [-1]], dtype=torch.int32))


def test_topk_over_two_million_experts():
    # 2 x 2M floats of scores per token: 16 MiB, more than any thread's stack
    e = 2**21
    spec = TopKSpec(torch.float32, num_experts=e, top_k=2)
    logits = torch.zeros(1, e)
    logits[0, 12345], logits[0, e - 1] = 5.0, 4.0
    weights, ids = _kernel("moe.topk", "cpu.native_topk", spec)(logits, 2)
    assert ids.tolist() == [[12345, e - 1]]
    assert weights.sum().item() == pytest.approx(1.0)
