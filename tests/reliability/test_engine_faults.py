"""Nothing a request does leaves the LLM unusable: requests that can never finish (longer than the cache or
max_model_len, token ids outside the vocabulary, empty) are rejected when added, each named with its reason,
and none of the batch is admitted; a step that fails takes its requests out and frees their blocks (and
their prefix hashes), so the next generate() gives what a fresh LLM gives."""

from __future__ import annotations

import pytest
import torch

from anyaccel.models import LLM, SamplingParams

PARAMS = SamplingParams(max_tokens=4, ignore_eos=True)
PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], [5, 6]]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from anyaccel.models.testing import tiny_checkpoint

    return tiny_checkpoint("Qwen3ForCausalLM", tmp_path_factory.mktemp("faults"))


def _llm(checkpoint, **kwargs) -> LLM:
    return LLM(checkpoint, dtype=torch.float32, block_size=16, progress=False, **kwargs)


def _idle(llm: LLM) -> bool:
    return llm.scheduler.done and len(llm.blocks.free) == len(llm.blocks.blocks)


def test_a_request_that_can_never_fit_the_cache_is_rejected_when_added(checkpoint):
    llm = _llm(checkpoint, num_blocks=2, max_model_len=64)
    # 30 + 8 tokens need 3 blocks of 16 (the last sampled token is never stored); the cache has 2
    with pytest.raises(ValueError, match=r"request 1: prompt of 30 tokens \+ max_tokens 8 needs 3 KV-cache"):
        llm.generate([[1] * 4, [1] * 30], SamplingParams(max_tokens=8))
    assert _idle(llm)  # the valid request was not admitted either
    out = llm.generate([[1] * 25], SamplingParams(max_tokens=8, ignore_eos=True))  # 32 tokens: 2 blocks
    assert len(out[0].token_ids) == 8 and out[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ([1, 10**9], r"request 1: token id 1000000000 is not an integer in the vocabulary"),
        ([1, -1], r"request 1: token id -1 is not"),
        ([], r"request 1: a prompt must have at least one token"),
        ([1] * 70, r"request 1: prompt of 70 tokens \+ max_tokens 4 exceeds max_model_len 64"),
    ],
)
def test_bad_requests_are_named_and_leave_the_llm_usable(checkpoint, prompt, message):
    llm = _llm(checkpoint, max_model_len=64)
    with pytest.raises(ValueError, match=message):
        llm.generate([PROMPTS[1], prompt], PARAMS)
    assert _idle(llm)
    assert [o.token_ids for o in llm.generate(PROMPTS, PARAMS)] == [o.token_ids for o in _fresh(checkpoint)]


def _fresh(checkpoint):
    return _llm(checkpoint, max_model_len=64).generate(PROMPTS, PARAMS)


def test_a_failing_step_leaves_a_clean_scheduler_and_cache(checkpoint, monkeypatch):
    llm = _llm(checkpoint, max_model_len=64)
    run = llm.runner.run

    def fail_once(prefill, decode):
        monkeypatch.setattr(llm.runner, "run", run)
        raise RuntimeError("a kernel failed")

    monkeypatch.setattr(llm.runner, "run", fail_once)
    with pytest.raises(RuntimeError, match="a kernel failed"):
        llm.generate(PROMPTS, PARAMS)
    assert _idle(llm)
    # the failed prefill published the hash of prompt 0's full first block before computing it: forgotten
    assert not llm.blocks.by_hash
    assert [o.token_ids for o in llm.generate(PROMPTS, PARAMS)] == [o.token_ids for o in _fresh(checkpoint)]
