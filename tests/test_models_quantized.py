"""Quantized checkpoints through anyaccel.schemes against the same model with the weights dequantized: a
DeepSeek-V3 style fp8 block checkpoint (e4m3fn weights, 128x128 `weight_scale_inv`, MoE experts included),
and 4-bit GPTQ / AWQ checkpoints (testing.w4_checkpoint).

The fp8 path also quantizes activations (per token, 1x128 groups), so it cannot equal the dense one. Each
quantized layer is therefore compared on its own, where that rounding costs a few percent and a scale read
from a wrong tile (the tiles' scales differ by up to 4x, see testing._spread_tiles) costs far more; the
whole model is compared on its first-step logits with a looser bound. TP=2 / EP=2 of this checkpoint are
checked against TP=1 in test_parallel.py.

The 4-bit paths compute with 16-bit activations from exactly the dequantized weights (testing._coarse_scale
makes them exact in float16), so they must match the dense model up to the order of the kernels' arithmetic.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.models import LLM
from anyaccel.models.engine.sampling import SamplingParams
from anyaccel.models.layers.linear import LinearBase
from anyaccel.models.layers.moe import FusedMoE
from anyaccel.models.testing import FP8_DEEPSEEK_V3, fp8_block_checkpoint, tiny_checkpoint, w4_checkpoint

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


def test_transformers_reads_the_fp8_checkpoint_as_the_dense_twin(tmp_path):
    """transformers' own fp8 loader (which dequantizes where no fp8 GPU is found) reads every weight of an fp8
    block checkpoint as exactly the dequantized twin's: the twin the fp8 path is checked against above is
    transformers' reading of the checkpoint. The logits of our fp8 path follow its model too (a plain Qwen3:
    activation rounding does not compound through MLA's chained projections here)."""
    from transformers import AutoModelForCausalLM

    shapes = dict(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1)
    source = tiny_checkpoint("Qwen3ForCausalLM", tmp_path / "source", head_dim=128, **shapes)
    fp8_block_checkpoint(source, tmp_path / "fp8", tmp_path / "dense")
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "fp8", dtype=torch.float32).eval()
    dense = load_file(tmp_path / "dense" / "model.safetensors")
    weights = theirs.state_dict()
    assert weights.keys() == dense.keys()
    for name, w in dense.items():
        torch.testing.assert_close(weights[name], w, rtol=0, atol=0, msg=name)
    ours = LLM(tmp_path / "fp8", dtype=torch.float32, progress=False)
    params = SamplingParams(max_tokens=1, return_logits=True)
    for prompt, got in zip(PROMPTS, ours.generate(PROMPTS, params), strict=True):
        with torch.inference_mode():
            want = theirs(torch.tensor([prompt])).logits[0, -1]
        # measured 0.05-0.07: the fp8 path also rounds activations to e4m3 (per token, 1x128 groups)
        assert (got.logits - want).abs().max() < 0.15 * want.abs().max()


W4_DTYPE = torch.float16
# case -> (architecture, config overrides, w4_checkpoint arguments). Qwen3-MoE's layer 0 is dense, layer 1
# sparse (gptq / awq experts); in features must be multiples of the group size (128: a wider Llama).
W4_CASES = {
    "gptq-sym-g32-moe": (
        "Qwen3MoeForCausalLM",
        {"mlp_only_layers": [0]},
        {"method": "gptq", "group_size": 32, "sym": True},
    ),
    "gptq-asym-g128": (
        "LlamaForCausalLM",
        {"hidden_size": 128, "intermediate_size": 256},
        {"method": "gptq", "group_size": 128, "sym": False},
    ),
    "gptq-act-order-g32": (
        "Qwen3ForCausalLM",
        {},
        {"method": "gptq", "group_size": 32, "sym": False, "desc_act": True},
    ),
    "awq-g32-moe": (
        "Qwen3MoeForCausalLM",
        {"mlp_only_layers": [0]},
        {"method": "awq", "group_size": 32, "sym": False},
    ),
    "awq-no-zero-point-g64": (
        "LlamaForCausalLM",
        {"intermediate_size": 128},
        {"method": "awq", "group_size": 64, "sym": True},
    ),
}
W4_MOE_RTOL = 4e-3  # |w4 - dense| / |dense| of a MoE layer; measured 0 on CPU, where both paths accumulate
# the same fp32 products: a different order may move outputs by a few float16 ulps (2^-11 relative each).
# One zero point off by one, in one group of one expert, measured 9e-3
W4_LOGITS_RTOL = 1e-2  # per step, max |diff| / max |logit|; measured 0-6e-4. Activations are rounded to
# float16 after every op on both sides, so a different accumulation order costs an ulp here and there that
# two decoder layers and the LM head carry on (~20 ulps allowed); wrong weights move logits by far more


def _w4_llm(path) -> LLM:
    return LLM(path, dtype=W4_DTYPE, max_model_len=64, num_blocks=8, progress=False)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Tiny float16 checkpoints by (architecture, overrides), each written once."""
    root, made = tmp_path_factory.mktemp("w4-sources"), {}

    def source(arch: str, overrides: dict):
        key = (arch, repr(sorted(overrides.items())))
        if key not in made:
            made[key] = tiny_checkpoint(arch, root / str(len(made)), dtype=torch.float16, **overrides)
        return made[key]

    return source


@pytest.fixture(scope="module", params=sorted(W4_CASES))
def w4_models(request, sources, tmp_path_factory):
    arch, overrides, fmt = W4_CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    w4_checkpoint(sources(arch, overrides), root / "w4", root / "dense", **fmt)
    return _w4_llm(root / "w4"), _w4_llm(root / "dense")


def test_every_w4_layer_computes_with_its_dequantized_weights(w4_models):
    """Each linear on the identity gives its effective weight, exactly: products with 1 and sums with 0 are
    exact in any order, and the dequantized weights are float16 numbers. MoE layers (routing and SiLU in
    between) are compared on random tokens, enough for every expert."""
    w4, dense = w4_models
    gen = torch.Generator().manual_seed(0)
    checked = {"linear": 0, "moe": 0}
    with torch.inference_mode():
        for (name, q), (_, d) in zip(w4.model.named_modules(), dense.model.named_modules(), strict=True):
            if isinstance(q, LinearBase):
                router = name.endswith(".gate")  # routers stay unquantized in 4-bit checkpoints
                assert hasattr(q, "qweight") != router, f"{name}: quantized {not router} expected"
                if not router:
                    eye = torch.eye(q.in_features, dtype=W4_DTYPE)
                    assert torch.equal(q(eye), d(eye)), name
                    checked["linear"] += 1
            elif isinstance(q, FusedMoE):
                x = torch.randn(32, q.hidden_size, generator=gen).to(W4_DTYPE)
                logits = torch.randn(32, q.num_experts, generator=gen)
                assert _relative(q(x, logits).float(), d(x, logits).float()) < W4_MOE_RTOL, name
                checked["moe"] += 1
    sparse = int(w4.config.architecture == "Qwen3MoeForCausalLM")  # layer 1 of 2; layer 0 is dense
    # per layer: qkv_proj, o_proj and gate_up_proj, down_proj where dense
    assert checked == {"linear": 4 * w4.config.num_hidden_layers - 2 * sparse, "moe": sparse}


def test_w4_model_logits_follow_the_dequantized_model(w4_models):
    """Prefill and three decode steps of two prompts. Greedy picks may part only where the tolerance allows
    (a near-tie); the texts then differ, so the comparison stops at that step."""
    w4, dense = w4_models
    params = SamplingParams(max_tokens=4, return_logits=True)
    for got, want in zip(w4.generate(PROMPTS, params), dense.generate(PROMPTS, params), strict=True):
        scale = want.logits.abs().max()
        for step, (g, w) in enumerate(zip(got.logits, want.logits, strict=True)):
            assert (g - w).abs().max() <= W4_LOGITS_RTOL * scale, step
            if got.token_ids[step] != want.token_ids[step]:
                break


def test_gptq_act_order_experts_are_rejected(sources, tmp_path):
    """moe.experts' int4_group layout has no g_idx: an act-order MoE checkpoint fails at load, by name."""
    source = sources("Qwen3MoeForCausalLM", {"mlp_only_layers": [0]})
    w4_checkpoint(
        source, tmp_path / "w4", tmp_path / "dense", method="gptq", group_size=32, sym=True, desc_act=True
    )
    with pytest.raises(ValueError, match="gptq MoE scheme: act-order"):
        _w4_llm(tmp_path / "w4")


def test_merged_gptq_parts_with_different_act_order_maps_are_refused(sources, tmp_path):
    """q, k and v read one input, so GPTQ writes one permutation for them; a checkpoint whose parts disagree
    cannot be one merged layer, and loading names the layer instead of computing with one part's map."""
    source = sources("Qwen3ForCausalLM", {})
    w4 = w4_checkpoint(
        source, tmp_path / "w4", tmp_path / "dense", method="gptq", group_size=32, sym=False, desc_act=True
    )
    tensors = load_file(w4 / "model.safetensors")
    name = "model.layers.1.self_attn.k_proj.g_idx"
    tensors[name] = tensors[name].flip(0).contiguous()
    save_file(tensors, w4 / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"model\.layers\.1\.self_attn\.qkv_proj: gptq scheme: the 3 merged"):
        _w4_llm(w4)
