"""A whole model through the plugin's kernels on an emulated S5000 (mp_31): a dense model with a sliding
window (Mistral) in bfloat16, against the torch reference on the same checkpoint and dtype. MATE serves
prefill and decode (scheduler metadata planned per forward), torch_musa's fused ops the norm, rope and
SwiGLU.

The two runs differ only by roundings (the fused ops round once to bfloat16 where the reference may round
twice), so greedy tokens must agree and logits stay within a few bfloat16 steps of the largest logit; a
wrong page table, window, length or rope angle would not.
"""

from __future__ import annotations

import os

import torch

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.testing import tiny_checkpoint

EMULATE = "musa:mp_31"
PROMPTS = [[3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43], [2, 71, 82, 81, 28]]
PARAMS = SamplingParams(max_tokens=3, ignore_eos=True, return_logits=True)
TOLERANCE = 0.05  # of the largest |logit|: bfloat16 rounding through two layers
MUSA_OPS = {"attention.prefill", "attention.decode", "norm.rms_norm", "rope.apply", "activation.silu_and_mul"}


def _run(model_dir, emulate: str | None):
    if emulate:
        os.environ["ANYACCEL_EMULATE"] = emulate
    else:
        os.environ["ANYACCEL_PLUGINS"] = "none"
    anyaccel.reset()
    try:
        llm = LLM(model_dir, dtype=torch.bfloat16, progress=False)
        outs = llm.generate(PROMPTS, PARAMS)
        bound = {r.op: r.selected.name for r in resolutions(llm.runner.model) if r.selected}
        return [o.logits for o in outs], [o.token_ids for o in outs], bound
    finally:
        os.environ.pop("ANYACCEL_EMULATE", None)
        os.environ.pop("ANYACCEL_PLUGINS", None)
        anyaccel.reset()


def test_dense_model_with_sliding_window_matches_reference(tmp_path):
    model_dir = tiny_checkpoint(
        "MistralForCausalLM", tmp_path / "dense", dtype=torch.bfloat16, sliding_window=6
    )
    logits, tokens, bound = _run(model_dir, EMULATE)
    assert {op for op, name in bound.items() if name.startswith("musa.")} >= MUSA_OPS, bound
    ref_logits, ref_tokens, _ = _run(model_dir, None)
    assert tokens == ref_tokens
    for a, b in zip(logits, ref_logits, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=TOLERANCE * b.abs().max().item())
