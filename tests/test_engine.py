"""The engine: block manager (prefix caching), scheduler (continuous batching, preemption), sampler and the
LLM API with the byte-level tokenizer."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.engine.block_manager import BlockManager
from anyaccel.models.engine.sampler import sample
from anyaccel.models.engine.scheduler import Scheduler
from anyaccel.models.engine.sequence import Sequence
from anyaccel.models.layers.attention import Attention
from anyaccel.models.testing import tiny_checkpoint


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path_factory.mktemp("engine"))


def test_block_manager_shares_full_prefix_blocks_and_recycles_them():
    blocks = BlockManager(num_blocks=8, block_size=4)
    first = Sequence(list(range(10)), SamplingParams(), 4)
    blocks.allocate(first)
    assert len(first.block_table) == 3 and first.num_cached_tokens == 0
    blocks.deallocate(first)
    second = Sequence(list(range(9)) + [99], SamplingParams(), 4)
    blocks.allocate(second)
    assert second.num_cached_tokens == 8 and second.block_table[:2] == first_blocks(blocks, first, second)
    other = Sequence([7] * 10, SamplingParams(), 4)
    blocks.allocate(other)
    assert other.num_cached_tokens == 0 and not set(other.block_table) & set(second.block_table)


def first_blocks(blocks: BlockManager, first: Sequence, second: Sequence) -> list[int]:
    """The blocks holding tokens 0..7, found again by their hashes."""
    prefix = None
    found = []
    for i in range(2):
        prefix = hash((prefix, tuple(second.block_tokens(i))))
        found.append(blocks.by_hash[prefix])
    return found


def test_a_prompt_whose_blocks_are_all_cached_still_computes_its_last_block():
    blocks = BlockManager(num_blocks=8, block_size=4)
    seq = Sequence(list(range(8)), SamplingParams(), 4)
    blocks.allocate(seq)
    blocks.deallocate(seq)
    again = Sequence(list(range(8)), SamplingParams(), 4)
    blocks.allocate(again)
    assert again.num_cached_tokens == 4


def test_scheduler_preempts_when_the_cache_is_full_and_finishes_everything(model_dir):
    """Two blocks of 16 per sequence at most and a cache of three: decoding must preempt and recompute."""
    llm = LLM(model_dir, dtype=torch.float32, num_blocks=3, max_model_len=32, progress=False)
    prompts = [[1] * 12, [2] * 12]
    outputs = llm.generate(prompts, SamplingParams(max_tokens=8, ignore_eos=True))
    roomy = LLM(model_dir, dtype=torch.float32, progress=False).generate(
        prompts, SamplingParams(max_tokens=8)
    )
    assert [o.token_ids for o in outputs] == [o.token_ids for o in roomy]
    assert sum(1 for p, _, _ in llm.stats.steps if p) > 1  # a preempted sequence was prefilled again


def test_scheduler_rejects_a_sequence_larger_than_the_cache():
    scheduler = Scheduler(BlockManager(2, 4), max_num_seqs=4, max_num_batched_tokens=64, eos_token_ids=set())
    with pytest.raises(ValueError, match="needs 3 cache blocks; the cache has 2"):
        scheduler.add(Sequence(list(range(9)), SamplingParams(), 4))


def test_sampler_greedy_top_k_top_p_and_seed():
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0]] * 4)
    seqs = [
        Sequence([1], p, 4)
        for p in (
            SamplingParams(),
            SamplingParams(temperature=1.0, top_k=1, seed=1),
            SamplingParams(temperature=1.0, top_p=0.5, seed=2),
            SamplingParams(temperature=1.0, top_k=2, seed=3),
        )
    ]
    tokens = sample(logits, seqs)
    assert tokens[:3] == [1, 1, 1] and tokens[3] in (1, 2)
    draws = [
        sample(logits[:1] * 0, [Sequence([1], SamplingParams(temperature=1.0, seed=7), 4)]) for _ in range(2)
    ]
    assert draws[0] == draws[1]  # the same seed draws the same token


@pytest.mark.parametrize("bad", [dict(max_tokens=0), dict(temperature=-1.0), dict(top_p=0.0), dict(top_k=-1)])
def test_sampling_params_reject_bad_values(bad):
    with pytest.raises(ValueError, match="SamplingParams"):
        SamplingParams(**bad)


def test_text_prompts_use_the_byte_tokenizer_and_stop_at_eos(model_dir):
    llm = LLM(model_dir, dtype=torch.float32, progress=False)
    greedy = llm.generate(["hi"], SamplingParams(max_tokens=6))[0]
    assert greedy.prompt_token_ids == [104, 105]
    assert greedy.text == bytes(t for t in greedy.token_ids if t < 256).decode("utf-8", errors="replace")
    eos = greedy.token_ids[2]
    llm.scheduler.eos = {eos}
    stopped = llm.generate(["hi"], SamplingParams(max_tokens=6))[0]
    assert stopped.token_ids == greedy.token_ids[: greedy.token_ids.index(eos) + 1]


def test_prompt_longer_than_the_model_is_rejected(model_dir):
    llm = LLM(model_dir, max_model_len=16, progress=False)
    with pytest.raises(ValueError, match="exceeds max_model_len 16"):
        llm.generate([[1] * 12], SamplingParams(max_tokens=8))


def test_the_cache_takes_the_block_size_its_decode_kernel_reads(model_dir, test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    anyaccel.reset()
    prompts, params = [[5, 6, 7] * 15, [9] * 40], SamplingParams(max_tokens=8, return_logits=True)
    llm = LLM(model_dir, dtype=torch.float32, progress=False)
    layer = next(m for m in llm.model.modules() if isinstance(m, Attention))
    assert llm.blocks.block_size == layer.spec.block_size == 32
    assert layer.k_cache.shape[1] == 32
    assert anyaccel.resolve("attention.decode", layer.spec).selected.name == "testchip.decode_bs32"
    got = llm.generate(prompts, params)
    # a block size the kernel does not read leaves decode to the reference, with the reason
    fixed = LLM(model_dir, dtype=torch.float32, block_size=16, progress=False)
    spec = next(m for m in fixed.model.modules() if isinstance(m, Attention)).spec
    res = anyaccel.resolve("attention.decode", spec)
    assert res.selected.provider == "reference"
    reason = next(c.reason for c in res.candidates if c.kernel.name == "testchip.decode_bs32")
    assert reason == "reads KV blocks of 32 tokens; the cache's hold 16"
    for a, b in zip(got, fixed.generate(prompts, params), strict=True):
        assert a.token_ids == b.token_ids
        torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-5)
