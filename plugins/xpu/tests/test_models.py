"""Whole models through the plugin's kernels on an emulated Battlemage: a dense model with a sliding window
(Mistral) and a Qwen3-MoE, against the torch reference on the same checkpoint and dtype.

The two runs differ only by roundings (the rope's cos/sin cache in the model dtype, the experts' outputs
rounded to bfloat16 between the grouped GEMMs), so greedy tokens must agree and logits stay within a few
bfloat16 steps of the largest logit; a wrong window, layout or weight preparation would not.
"""

from __future__ import annotations

import os

import torch

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.testing import tiny_checkpoint

EMULATE = "xpu:bmg"
PROMPTS = [[3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43], [2, 71, 82, 81, 28]]
PARAMS = SamplingParams(max_tokens=3, ignore_eos=True, return_logits=True)
TOLERANCE = 0.05  # of the largest |logit|: bfloat16 rounding through two layers
XPU_OPS = {
    "attention.prefill",
    "attention.decode",
    "attention.write_kv",
    "norm.rms_norm",
    "norm.add_rms_norm",
    "rope.apply",
}
MOE_OPS = {"moe.topk", "moe.experts"}


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


def _assert_matches(got, want) -> None:
    (logits, tokens, _), (ref_logits, ref_tokens, _) = got, want
    assert tokens == ref_tokens
    for a, b in zip(logits, ref_logits, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=TOLERANCE * b.abs().max().item())


def _xpu_ops(bound: dict[str, str]) -> set[str]:
    return {op for op, name in bound.items() if name.startswith("xpu.")}


def test_dense_model_with_sliding_window_matches_reference(tmp_path):
    """Mistral with a 6-token window over 13-token prompts: window_size (5, 0) in the flash attention."""
    model_dir = tiny_checkpoint(
        "MistralForCausalLM", tmp_path / "dense", dtype=torch.bfloat16, sliding_window=6
    )
    got = _run(model_dir, EMULATE)
    assert _xpu_ops(got[2]) >= XPU_OPS, got[2]
    assert got[2]["attention.prefill"] == "xpu.flash_attn_prefill"
    _assert_matches(got, _run(model_dir, None))


def test_moe_matches_reference(tmp_path):
    model_dir = tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path / "moe", dtype=torch.bfloat16)
    got = _run(model_dir, EMULATE)
    assert _xpu_ops(got[2]) >= XPU_OPS | MOE_OPS, got[2]
    _assert_matches(got, _run(model_dir, None))
