"""Decode steps replayed from host graphs (models/engine/decode_graphs.py) give what eager steps give, bit for
bit, through batch sizes that shrink, block boundaries and preemption; and say why when they are off."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.engine.sequence import Sequence


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    from anyaccel.models.testing import tiny_checkpoint

    return tiny_checkpoint("LlamaForCausalLM", tmp_path_factory.mktemp("graphs"))


def test_graph_steps_match_eager_steps_bit_for_bit(llama):
    """Four prompts of different lengths stopping at different lengths: batch sizes 4, 3, 2 and 1, each
    captured, checked against the eager step and replayed; sequences cross several 16-token blocks."""
    prompts = [[3, 7, 11], list(range(5, 25)), [9] * 31, [1, 2]]
    params = [SamplingParams(max_tokens=n, ignore_eos=True, return_logits=True) for n in (40, 25, 12, 33)]
    eager = LLM(llama, dtype=torch.float32, progress=False, enforce_eager=True)
    graphed = LLM(llama, dtype=torch.float32, progress=False)
    assert eager.runner.graphs_off == "enforce_eager=True" and graphed.runner.graphs_off is None
    expected = [eager.generate([p], q)[0] for p, q in zip(prompts, params, strict=True)]
    together = eager.generate(prompts, params)
    got = graphed.generate(prompts, params)
    for want, alone, out in zip(together, expected, got, strict=True):
        assert out.token_ids == want.token_ids == alone.token_ids
        assert torch.equal(out.logits, want.logits)
    graphs = graphed.runner.decode_graphs.batches
    assert sorted(graphs) == [1, 2, 3, 4]
    assert all(g.graph is not None and g.checked for g in graphs.values())


def test_graph_steps_survive_preemption(llama):
    """A cache of three 16-token blocks for two sequences: one is preempted and recomputed, so a row of the
    batch gets a new block table under the same sequence."""
    prompts = [[1] * 12, [2] * 12]
    params = SamplingParams(max_tokens=8, ignore_eos=True)
    small = LLM(llama, dtype=torch.float32, num_blocks=3, max_model_len=32, progress=False)
    roomy = LLM(llama, dtype=torch.float32, progress=False, enforce_eager=True)
    outputs = small.generate(prompts, params)
    assert [o.token_ids for o in outputs] == [o.token_ids for o in roomy.generate(prompts, params)]
    assert sum(1 for p, _, _ in small.stats.steps if p) > 1  # a preempted sequence was prefilled again


def test_graphs_stay_within_their_memory_budget(llama):
    eager = LLM(llama, dtype=torch.float32, progress=False, enforce_eager=True)
    llm = LLM(llama, dtype=torch.float32, progress=False)
    graphs = llm.runner.decode_graphs
    prompts, params = [[5, 6, 7], [8, 9]], SamplingParams(max_tokens=6, ignore_eos=True)
    llm.generate(prompts[:1], params)  # batch 1 recorded
    assert graphs.batches[1].graph is not None and graphs.held_bytes > 0
    graphs.budget_bytes = graphs.held_bytes  # nothing left for batch 2
    out = llm.generate(prompts, params)
    assert graphs.batches[2].graph is None
    assert [o.token_ids for o in out] == [o.token_ids for o in eager.generate(prompts, params)]


def test_a_bad_block_id_in_a_replayed_step_raises_the_kernels_error(llama):
    llm = LLM(llama, dtype=torch.float32, progress=False)
    llm.generate([[4, 5, 6]], SamplingParams(max_tokens=4, ignore_eos=True))  # captures and checks batch 1
    assert llm.runner.decode_graphs.batches[1].checked
    seq = Sequence([4, 5, 6, 7], SamplingParams(), llm.blocks.block_size)
    seq.block_table = [llm.runner.num_blocks + 5]
    with pytest.raises(ValueError, match="outside"):
        llm.runner.run([], [seq])


def test_graphs_say_why_they_are_off(llama, monkeypatch):
    compiled = LLM(llama, dtype=torch.float32, progress=False, compile=True)
    assert compiled.runner.graphs_off == "torch.compile runs the model"
    monkeypatch.setenv("ANYACCEL_KERNELS", "attention.decode=cpu.sdpa_decode")
    anyaccel.reset()
    llm = LLM(llama, dtype=torch.float32, progress=False)
    assert llm.runner.graphs_off == "attention.decode runs cpu.sdpa_decode, which is not capturable"
    assert llm.runner.decode_graphs is None
