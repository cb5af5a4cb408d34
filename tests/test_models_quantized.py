"""Quantized checkpoints through anyaccel.schemes: a DeepSeek-V3 style fp8 block checkpoint (e4m3fn weights,
128x128 `weight_scale_inv`, MoE experts included) against the same model with the weights dequantized.

The fp8 path also quantizes activations (per token, 1x128 groups), so it cannot equal the dense one. Each
quantized layer is therefore compared on its own, where that rounding costs a few percent and a scale read
from a wrong tile (the tiles' scales differ by up to 4x, see testing._spread_tiles) costs far more; the
whole model is compared on its first-step logits with a looser bound. TP=2 / EP=2 of this checkpoint are
checked against TP=1 in test_parallel.py.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.models import LLM
from anyaccel.models.engine.sampling import SamplingParams
from anyaccel.models.layers.linear import LinearBase
from anyaccel.models.layers.moe import FusedMoE
from anyaccel.models.testing import FP8_DEEPSEEK_V3, fp8_block_checkpoint, tiny_checkpoint

PROMPTS = [[3, 14, 15, 92, 65, 35], [89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50]]
LAYER_RTOL = 0.06  # |fp8 - dense| / |dense| per layer; measured 0.02-0.03 (activation rounding to e4m3)
LOGITS_RTOL = 0.25  # first-step logits, max |diff| / max |logit|; measured 0.06-0.13: the layers' few
# percent compound through MLA's chained projections and sharp attention of this tiny random model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp8")
    source = tiny_checkpoint("DeepseekV3ForCausalLM", root / "source", **FP8_DEEPSEEK_V3)
    _decisive_routing(source / "model.safetensors")
    fp8_block_checkpoint(source, root / "fp8", root / "dense")
    fp8 = LLM(root / "fp8", dtype=torch.float32, progress=False)
    dense = LLM(root / "dense", dtype=torch.float32, progress=False)
    return fp8, dense


def _decisive_routing(path) -> None:
    """Correction biases far apart, so the expert choice (bias-dominated) cannot flip on the activations'
    rounding; the routing weights still come from the scores. Otherwise one flipped expert in this tiny
    random model moves the logits by more than the quantization itself."""
    tensors = load_file(path)
    for name, bias in tensors.items():
        if name.endswith("e_score_correction_bias"):
            tensors[name] = torch.randperm(bias.numel(), generator=torch.Generator().manual_seed(1)).float()
    save_file(tensors, path, metadata={"format": "pt"})


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).norm() / want.norm())


def test_every_fp8_layer_matches_its_dequantized_weights(checkpoints):
    fp8, dense = checkpoints
    gen = torch.Generator().manual_seed(0)
    checked = {"linear": 0, "moe": 0}
    with torch.inference_mode():
        for (name, q), (_, d) in zip(
            fp8.runner.model.named_modules(), dense.runner.model.named_modules(), strict=True
        ):
            if isinstance(q, LinearBase) and hasattr(q, "weight_scale_inv"):
                x = torch.randn(5, q.in_features, generator=gen)
                got, want = q(x), d(x)
                checked["linear"] += 1
            elif isinstance(q, FusedMoE):
                x = torch.randn(7, q.hidden_size, generator=gen)
                logits = torch.randn(7, q.num_experts, generator=gen)
                got, want = q(x, logits), d(x, logits)
                checked["moe"] += 1
            else:
                continue
            assert _relative(got, want) < LAYER_RTOL, name
    assert checked["linear"] >= 10 and checked["moe"] == 1, checked


def test_fp8_model_logits_follow_the_dequantized_model(checkpoints):
    fp8, dense = checkpoints
    params = SamplingParams(max_tokens=1, return_logits=True)
    for got, want in zip(fp8.generate(PROMPTS, params), dense.generate(PROMPTS, params), strict=True):
        scale = want.logits.abs().max()
        assert (got.logits - want.logits).abs().max() < LOGITS_RTOL * scale
