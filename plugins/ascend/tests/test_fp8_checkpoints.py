"""fp8 checkpoints on an emulated Atlas A2, which has no fp8 matrix units: refused at model construction with
an error naming the checkpoint, the SoC and the setting that dequantizes them; with that setting, loaded
(weights dequantized once by npu.fp8_dequantized_gemm's prepare) and matching the torch reference's own fp8
path on the same checkpoint."""

from __future__ import annotations

import pytest
import torch
from anyaccel_ascend.gates import FP8_SETTING

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.loader import CheckpointError
from anyaccel.models.testing import fp8_block_checkpoint, tiny_checkpoint

EMULATE = "npu:ascend910b"
PROMPTS = [[3, 14, 15, 92, 65, 35, 89], [2, 71, 82]]
PARAMS = SamplingParams(max_tokens=3, ignore_eos=True, return_logits=True)
# every merged part (q, k, v; gate, up) a multiple of the 128x128 scale tiles; head dim 64 for npu_mrope
# Both runs quantize the activations to fp8 (steps of 1/16 relative), which turns the bfloat16 differences of
# the two paths (rope, attention) into whole fp8 steps now and then: the logits of the two agree to about 9%
# of the largest one here (each is about 10% from its dense twin), a wrong layout or scale would not.
TOLERANCE = 0.15
SHAPES = dict(hidden_size=256, intermediate_size=128, num_attention_heads=4, num_key_value_heads=4)


@pytest.fixture(scope="module")
def fp8_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp8")
    source = tiny_checkpoint("LlamaForCausalLM", root / "source", dtype=torch.bfloat16, **SHAPES)
    return fp8_block_checkpoint(source, root / "fp8", root / "dense")


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv(FP8_SETTING, raising=False)
    yield monkeypatch
    anyaccel.reset()


def _generate(fp8_dir, env, **settings: str):
    for name, value in settings.items():
        env.setenv(name, value)
    anyaccel.reset()
    llm = LLM(fp8_dir, dtype=torch.bfloat16, progress=False)
    outs = llm.generate(PROMPTS, PARAMS)
    bound = {r.selected.name for r in resolutions(llm.runner.model) if r.selected}
    return [o.logits for o in outs], [o.token_ids for o in outs], bound


def test_fp8_checkpoint_is_refused_naming_checkpoint_soc_and_setting(fp8_dir, env):
    env.setenv("ANYACCEL_EMULATE", EMULATE)
    anyaccel.reset()
    with pytest.raises(CheckpointError) as info:
        LLM(fp8_dir, dtype=torch.bfloat16, progress=False)
    message = str(info.value)
    assert str(fp8_dir) in message and "ascend910b" in message, message
    assert f"{FP8_SETTING}=dequantize" in message, message


def test_fp8_checkpoint_dequantized_at_load_when_asked_matches_reference(fp8_dir, env):
    logits, tokens, bound = _generate(fp8_dir, env, ANYACCEL_EMULATE=EMULATE, **{FP8_SETTING: "dequantize"})
    assert "npu.fp8_dequantized_gemm" in bound, bound
    env.delenv("ANYACCEL_EMULATE")
    ref_logits, ref_tokens, _ = _generate(fp8_dir, env, ANYACCEL_PLUGINS="none")
    assert tokens == ref_tokens
    for got, want in zip(logits, ref_logits, strict=True):
        torch.testing.assert_close(
            got.float(), want.float(), rtol=0, atol=TOLERANCE * want.abs().max().item()
        )
