"""The model under torch.compile(fullgraph=True) on CPU: every anyaccel op is one opaque custom-op node, so
the whole forward (embedding, norms, rotary, paged attention, MoE, LM head) traces without a graph break and
gives the eager logits."""

from __future__ import annotations

import torch

from anyaccel.models import LLM, SamplingParams
from anyaccel.models.testing import tiny_checkpoint


def test_fullgraph_compiled_model_matches_eager(tmp_path):
    model_dir = tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path, num_hidden_layers=1)
    prompts = [[1, 2, 3, 4, 5], [6, 7]]
    params = SamplingParams(max_tokens=3, return_logits=True)
    eager = LLM(model_dir, dtype=torch.float32, progress=False).generate(prompts, params)
    torch._dynamo.reset()
    compiled = LLM(model_dir, dtype=torch.float32, compile=True, progress=False).generate(prompts, params)
    for got, want in zip(compiled, eager, strict=True):
        assert got.token_ids == want.token_ids
        torch.testing.assert_close(got.logits, want.logits, rtol=1e-4, atol=1e-4)
