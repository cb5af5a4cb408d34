"""The random-weight checkpoints (testing.tiny_checkpoint and the demo) keep none of the constants that
transformers initialises tensors to (norm weights 1, biases 0, DeepSeek-V3's e_score_correction_bias 0), so
that parity with transformers fails for a model or kernel that ignores one of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from anyaccel.models import LLM, SamplingParams
from anyaccel.models.compare import compare_with_transformers
from anyaccel.models.demo import DEMO_NAME, DEMO_VERSION, demo_checkpoint
from anyaccel.models.layers.attention import Attention
from anyaccel.models.layers.linear import LinearBase
from anyaccel.models.layers.moe import FusedMoE
from anyaccel.models.layers.norm import RMSNorm
from anyaccel.models.layers.rotary import RotaryEmbedding, cos_sin_cache, rope_parameters
from anyaccel.models.random_constants import SCALE_RANGE, ZERO_SPREAD, constant_tensors
from anyaccel.models.testing import TINY, fp8_block_checkpoint, tiny_checkpoint, w4_checkpoint

PROMPTS = [[5, 17, 42, 7, 99, 3, 250, 11, 64], [300, 2]]
# Every architecture, and Llama with attention_bias (biases on q/k/v and on o_proj, a row-parallel layer).
CASES: dict[str, tuple[str, dict]] = {arch: (arch, {}) for arch in TINY}
CASES["LlamaForCausalLM+attention_bias"] = ("LlamaForCausalLM", {"attention_bias": True})
# biases transformers draws at random rather than setting to a constant: GPT-OSS's router bias
RANDOM_BIASES = ("mlp.router.bias",)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _is_constant(t: torch.Tensor) -> bool:
    return bool((t == t.reshape(-1)[0]).all())


def _assert_spread(tensors: dict[str, torch.Tensor], initial: dict[str, float]) -> None:
    """No floating-point tensor is constant; those that transformers initialises to a constant (`initial`,
    by name) lie around it as random_constants draws them, not as a few outliers."""
    assert not [name for name, t in tensors.items() if t.is_floating_point() and _is_constant(t)]
    low, high = SCALE_RANGE
    for name, value in initial.items():
        t = tensors[name].float()
        if value:
            assert t.min() >= low * value and t.max() <= high * value, name
        else:
            assert t.abs().max() <= ZERO_SPREAD, name
        assert t.std() > 0.2 * (high - low if value else ZERO_SPREAD) / 3**0.5, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_tensor_keeps_the_constant_transformers_initialises_it_to(tiny_checkpoints, case):
    """Found by value: the tensors a freshly initialised transformers model holds as constants are exactly its
    norm weights and biases (e_score_correction_bias included), and the checkpoint spreads each of them."""
    from transformers import AutoConfig, AutoModelForCausalLM

    arch, overrides = CASES[case]
    model_dir = tiny_checkpoints(arch, **overrides)
    tensors = load_file(model_dir / "model.safetensors")
    config = AutoConfig.from_pretrained(model_dir)
    initial = constant_tensors(AutoModelForCausalLM.from_config(config, dtype=torch.float32))
    constants = {name for name in tensors if name.endswith(("norm.weight", "bias"))}
    assert set(initial) == {name for name in constants if not name.endswith(RANDOM_BIASES)}
    _assert_spread(tensors, initial)


@pytest.mark.parametrize("variant", ["fp8 block", "gptq"])
def test_quantized_variants_carry_the_spread_tensors(tmp_path, tiny_checkpoints, variant):
    """fp8_block_checkpoint and w4_checkpoint copy norm weights and biases (never quantized) unchanged into
    both the quantized checkpoint and its dequantized twin."""
    if variant == "fp8 block":
        source = tiny_checkpoints("DeepseekV3ForCausalLM")
        fp8_block_checkpoint(source, tmp_path / "quantized", tmp_path / "dense")
    else:
        source = tiny_checkpoints("Qwen2ForCausalLM")
        w4_checkpoint(
            source, tmp_path / "quantized", tmp_path / "dense", method="gptq", group_size=32, sym=False
        )
    tensors = load_file(source / "model.safetensors")
    spread = {name: t for name, t in tensors.items() if name.endswith(("norm.weight", "bias"))}
    assert any(name.endswith("bias") for name in spread)  # e_score_correction_bias, q/k/v biases
    for twin in ("quantized", "dense"):
        written = load_file(tmp_path / twin / "model.safetensors")
        for name, t in spread.items():
            assert torch.equal(written[name], t), f"{twin}: {name}"


def test_tiny_checkpoints_are_deterministic(tmp_path, tiny_checkpoints):
    shared = load_file(tiny_checkpoints("Qwen2ForCausalLM") / "model.safetensors")
    again = load_file(tiny_checkpoint("Qwen2ForCausalLM", tmp_path / "again") / "model.safetensors")
    other = load_file(tiny_checkpoint("Qwen2ForCausalLM", tmp_path / "other", seed=1) / "model.safetensors")
    assert shared.keys() == again.keys()
    for name, t in shared.items():
        assert torch.equal(t, again[name]), name
        assert not torch.equal(t, other[name]), name


Sabotage = Callable[[nn.Module], int]


def _norm_kernels_ignoring_weight(which: Callable[[str], bool]) -> Sabotage:
    """Rebind the norm kernels of the RMSNorms named `which` to ones that apply a weight of 1."""

    def unit_weight(kernel, index):
        def call(*args):
            args = list(args)
            args[index] = torch.ones_like(args[index])
            return kernel(*args)

        return call

    def sabotage(model: nn.Module) -> int:
        hit = 0
        for name, m in model.named_modules():
            if isinstance(m, RMSNorm) and which(name):
                m.rms_norm = unit_weight(m.rms_norm, 1)  # (x, weight, eps)
                m.add_rms_norm = unit_weight(m.add_rms_norm, 2)  # (x, residual, weight, eps)
                hit += 1
        return hit

    return sabotage


def _biases_dropped(which: Callable[[str], bool]) -> Sabotage:
    def sabotage(model: nn.Module) -> int:
        hit = 0
        for name, m in model.named_modules():
            if isinstance(m, LinearBase) and m.bias is not None and which(name):
                m.bias = None
                hit += 1
        return hit

    return sabotage


def _sinks_ignored(model: nn.Module) -> int:
    """Attention without sinks: a sink logit of -inf adds exp(-inf) = 0 to every softmax denominator."""
    layers = [m for m in model.modules() if isinstance(m, Attention) and m.sinks is not None]
    for m in layers:
        m.sinks.data.fill_(float("-inf"))
    return len(layers)


def _expert_biases_zeroed(name: str) -> Sabotage:
    def sabotage(model: nn.Module) -> int:
        layers = [m for m in model.modules() if isinstance(m, FusedMoE) and hasattr(m, name)]
        for m in layers:
            getattr(m, name).data.zero_()
        return len(layers)

    return sabotage


def _yarn_truncated(model: nn.Module) -> int:
    """GPT-OSS's YaRN with its ramp bounds rounded to whole dims (truncate true, YaRN's default): the
    checkpoint says truncate false."""
    layers = [m for m in model.modules() if isinstance(m, RotaryEmbedding)]
    p = {**rope_parameters(model.config), "truncate": True}
    for m in layers:
        m.cos_sin_cache.copy_(cos_sin_cache(m.cos_sin_cache.shape[1], p, m.cos_sin_cache.shape[0]))
    return len(layers)


def _correction_bias_zeroed(model: nn.Module) -> int:
    layers = [m for m in model.modules() if isinstance(m, FusedMoE) and m.correction_bias is not None]
    for m in layers:
        m.correction_bias.data.zero_()
    return len(layers)


# case of CASES -> what the engine's model is made to ignore
IGNORED: dict[str, tuple[str, Sabotage]] = {
    "Qwen3 q_norm and k_norm weights": (
        "Qwen3ForCausalLM",
        _norm_kernels_ignoring_weight(lambda name: name.endswith(("q_norm", "k_norm"))),
    ),
    "Mixtral final norm weight": (
        "MixtralForCausalLM",
        _norm_kernels_ignoring_weight(lambda name: name == "model.norm"),
    ),
    "DeepSeek-V3 q_a and kv_a layernorm weights": (
        "DeepseekV3ForCausalLM",
        _norm_kernels_ignoring_weight(lambda name: name.endswith("_a_layernorm")),
    ),
    "DeepSeek-V3 e_score_correction_bias": ("DeepseekV3ForCausalLM", _correction_bias_zeroed),
    "Qwen2 q/k/v biases": ("Qwen2ForCausalLM", _biases_dropped(lambda name: name.endswith("qkv_proj"))),
    "Llama o_proj bias": (
        "LlamaForCausalLM+attention_bias",
        _biases_dropped(lambda name: name.endswith("o_proj")),
    ),
    "GPT-OSS attention sinks": ("GptOssForCausalLM", _sinks_ignored),
    "GPT-OSS router bias": ("GptOssForCausalLM", _biases_dropped(lambda name: name.endswith("router"))),
    "GPT-OSS expert gate/up biases": ("GptOssForCausalLM", _expert_biases_zeroed("w13_bias")),
    "GPT-OSS expert down biases": ("GptOssForCausalLM", _expert_biases_zeroed("w2_bias")),
    "GPT-OSS untruncated YaRN": ("GptOssForCausalLM", _yarn_truncated),
}


def _intact_then_ignoring(model_dir, sabotage: Sabotage, prompts: list[list[int]], max_tokens: int):
    """Parity of one engine model with transformers, before and after `sabotage`."""
    llm = LLM(model_dir, dtype=torch.float32, progress=False)
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, return_logits=True)
    intact = compare_with_transformers(model_dir, llm.generate(prompts, params), torch.float32)
    assert sabotage(llm.model) > 0, "nothing to ignore in this checkpoint"
    llm.runner.reset_graphs()  # the decode graphs recorded the intact model's calls
    broken = compare_with_transformers(model_dir, llm.generate(prompts, params), torch.float32)
    return intact, broken


@pytest.mark.parametrize(("case", "sabotage"), [pytest.param(*v, id=k) for k, v in IGNORED.items()])
def test_parity_fails_when_a_constant_initialised_tensor_is_ignored(tiny_checkpoints, case, sabotage):
    """The same checkpoint passes intact and fails with the tensors ignored (by a norm kernel that applies a
    weight of 1, a layer that drops its bias, a router that reads a correction bias of 0): what a checkpoint
    holding transformers' constants could not tell apart."""
    arch, overrides = CASES[case]
    intact, broken = _intact_then_ignoring(tiny_checkpoints(arch, **overrides), sabotage, PROMPTS, 4)
    assert intact.ok, intact
    assert not broken.ok, broken


def test_the_demo_spreads_its_norm_weights_and_parity_catches_a_norm_ignoring_them(tmp_path, monkeypatch):
    """The demo checkpoint (built here, in a cache directory named with DEMO_VERSION so that a build of an
    older demo.py is not reused) has no constant tensor, and its parity check fails once every norm kernel
    applies a weight of 1."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_dir = demo_checkpoint()
    assert model_dir.name == f"{DEMO_NAME}-v{DEMO_VERSION}"
    tensors = load_file(model_dir / "model.safetensors")
    _assert_spread(tensors, {name: 1.0 for name in tensors if name.endswith("norm.weight")})
    intact, broken = _intact_then_ignoring(
        model_dir, _norm_kernels_ignoring_weight(lambda name: True), PROMPTS, 2
    )
    assert intact.ok, intact
    assert not broken.ok, broken
