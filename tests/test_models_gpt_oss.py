"""GPT-OSS beyond the parity every architecture gets (test_models_parity, test_models_checkpoints): its
config defaults, the per-layer windows and sinks, and MXFP4 checkpoints kept packed, checked against their
dequantized twin and against transformers (which, without the `kernels` package, dequantizes MXFP4 on CPU)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.cli.main import main
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.compare import compare_with_transformers
from anyaccel.models.config import ModelConfig
from anyaccel.models.gpt_oss import DEFAULT_ROPE, with_defaults
from anyaccel.models.gpt_oss_experts import SWIGLU_LIMIT, GptOssExperts
from anyaccel.models.layers.moe import Routing
from anyaccel.models.mxfp4_checkpoint import (
    dequantize_mxfp4,
    gpt_oss_mxfp4_checkpoint,
    quantize_mxfp4,
)
from anyaccel.models.mxfp4_checkpoint import main as mxfp4_main
from anyaccel.models.parallel import Parallel

PROMPTS = [[5, 17, 42, 7, 99, 3, 250, 11, 64], [300, 2], list(range(20, 61))]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mxfp4_twins(tiny_checkpoints, tmp_path_factory):
    """(MXFP4 checkpoint, its dequantized dense twin) of the tiny float32 GPT-OSS, built once."""
    root = tmp_path_factory.mktemp("gpt-oss-mxfp4")
    source = tiny_checkpoints("GptOssForCausalLM")
    return gpt_oss_mxfp4_checkpoint(source, root / "mxfp4", root / "dense"), root / "dense"


def _generate(model_dir, dtype, max_tokens=6):
    llm = LLM(model_dir, dtype=dtype, max_num_seqs=2, progress=False)
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, return_logits=True)
    return llm, llm.generate(PROMPTS, params)


def test_config_defaults_are_transformers_ones():
    raw = {"architectures": ["GptOssForCausalLM"], "num_hidden_layers": 3}
    config = with_defaults(ModelConfig(raw))
    assert config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    assert config.rope_parameters == {**DEFAULT_ROPE, "rope_theta": 150000.0}
    assert [config.sliding_window(i) for i in range(3)] == [128, -1, 128]
    with pytest.raises(ValueError, match="swiglu_limit=8.0"):
        with_defaults(ModelConfig({**raw, "swiglu_limit": 8.0}))
    with pytest.raises(ValueError, match="quant_method 'fp8' is not supported"):
        with_defaults(ModelConfig({**raw, "quantization_config": {"quant_method": "fp8"}}))


def test_windows_and_sinks_follow_the_checkpoint(tiny_checkpoints):
    model_dir = tiny_checkpoints("GptOssForCausalLM")
    llm = LLM(model_dir, dtype=torch.float32, progress=False)
    layers = llm.model.model.layers
    assert [layer.self_attn.attn.window for layer in layers] == [8, -1]
    tensors = load_file(model_dir / "model.safetensors")
    for i, layer in enumerate(layers):
        assert layer.self_attn.attn.spec.sinks
        torch.testing.assert_close(layer.self_attn.attn.sinks, tensors[f"model.layers.{i}.self_attn.sinks"])


def test_tied_embeddings_as_the_config_says(tiny_checkpoints):
    model_dir = tiny_checkpoints("GptOssForCausalLM", tie_word_embeddings=True)
    llm, outputs = _generate(model_dir, torch.float32, max_tokens=4)
    assert llm.model.lm_head.weight is llm.model.model.embed_tokens.weight
    result = compare_with_transformers(model_dir, outputs, torch.float32)
    assert result.ok and result.tokens_match, result


def test_swiglu_clamps_are_applied(tiny_checkpoints, tmp_path, monkeypatch):
    """The experts' gate/up weights scaled 30x: gate and up values pass the limit of 7 (seen inside
    transformers' own experts), where the clamps change the output, and the logits still match."""
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssExperts as Reference

    source = tiny_checkpoints("GptOssForCausalLM")
    tensors = load_file(source / "model.safetensors")
    for name in tensors:
        if name.endswith("gate_up_proj"):
            tensors[name] = tensors[name] * 30
    save_file(tensors, tmp_path / "model.safetensors")
    shutil.copy(source / "config.json", tmp_path)
    largest = []
    apply_gate = Reference._apply_gate

    def recording(self, gate_up):
        largest.append(gate_up.abs().max().item())
        return apply_gate(self, gate_up)

    monkeypatch.setattr(Reference, "_apply_gate", recording)
    _, outputs = _generate(tmp_path, torch.float32, max_tokens=4)
    result = compare_with_transformers(tmp_path, outputs, torch.float32)
    assert max(largest) > 2 * SWIGLU_LIMIT
    assert result.ok and result.tokens_match, result


def test_mxfp4_packing_is_the_one_transformers_reads():
    """The test writer's blocks and scales decode, in transformers' own MXFP4 dequantization, to the values
    the writer says they hold (so the twins below test the loader against the real format)."""
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    rows = torch.randn(3, 8, 96, generator=torch.Generator().manual_seed(0))
    blocks, scales = quantize_mxfp4(rows)
    assert blocks.shape == (3, 8, 3, 16) and blocks.dtype == torch.uint8 and scales.shape == (3, 8, 3)
    ours = dequantize_mxfp4(blocks, scales)
    assert (ours - rows).abs().max() <= rows.abs().max() / 4  # within e2m1's coarse grid
    theirs = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)  # [E, K, N]
    assert torch.equal(theirs, ours.transpose(1, 2))


def test_the_writer_module_builds_a_runnable_mxfp4_checkpoint(tmp_path, capsys):
    assert mxfp4_main([str(tmp_path), "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "mxfp4")
    config = json.loads((tmp_path / "mxfp4" / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "mxfp4"
    names = load_file(tmp_path / "mxfp4" / "model.safetensors").keys()
    assert "model.layers.0.mlp.experts.gate_up_proj_blocks" in names
    assert "model.layers.0.mlp.experts.gate_up_proj" in load_file(
        tmp_path / "dequantized" / "model.safetensors"
    )


def test_mxfp4_experts_stay_packed_and_match_the_dequantized_twin(mxfp4_twins):
    mxfp4_dir, dense_dir = mxfp4_twins
    llm, packed = _generate(mxfp4_dir, torch.float32)
    experts = llm.model.model.layers[0].mlp.experts
    assert experts.scheme.spec.quant == "mxfp4" and experts.scheme.spec.has_bias
    assert experts.w13_blocks.dtype == torch.uint8 and not hasattr(experts, "w13_weight")
    _, dense = _generate(dense_dir, torch.float32)
    for got, want in zip(packed, dense, strict=True):
        assert got.token_ids == want.token_ids
        torch.testing.assert_close(got.logits, want.logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mxfp4_matches_transformers(mxfp4_twins, dtype):
    mxfp4_dir, _ = mxfp4_twins
    _, outputs = _generate(mxfp4_dir, dtype)
    result = compare_with_transformers(mxfp4_dir, outputs, dtype)
    assert result.ok, result
    if dtype == torch.float32:
        assert result.tokens_match


def test_mxfp4_tensor_parallel_shards_need_whole_blocks():
    """At TP=2 an intermediate size of 96 leaves 48 features per rank: not whole 32-element blocks."""
    with pytest.raises(ValueError, match="multiples of the 32-element block"):
        GptOssExperts(4, 64, 96, Routing(2), Parallel(0, 2), dtype=torch.float32, quant="mxfp4")


def test_run_compare_transformers_on_an_mxfp4_checkpoint(mxfp4_twins, capsys):
    mxfp4_dir, _ = mxfp4_twins
    args = ["run", "--model", str(mxfp4_dir), "--json", "--compare-transformers", "--max-tokens", "4"]
    code = main([*args, "--prompt", "hello", "--prompt", "attention sinks", "--dtype", "float32"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["model"]["architecture"] == "GptOssForCausalLM"
    assert "moe.experts" in {k["op"] for k in data["kernels"]}
    assert data["compare_transformers"]["ok"] and data["compare_transformers"]["tokens_match"]
