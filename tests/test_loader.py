"""The safetensors loader: sharded checkpoints, and a clear error naming file and tensor for every defect."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.models import LLM, SamplingParams
from anyaccel.models.layers.attention import Attention
from anyaccel.models.layers.linear import LinearBase
from anyaccel.models.loader import CheckpointError
from anyaccel.models.testing import fp8_block_checkpoint, tiny_checkpoint

ARCH = "Qwen3ForCausalLM"
# every projection a multiple of the fp8 block checkpoints' 128x128 scale tiles (q 256, k 128, v 128)
FP8_SHAPES = dict(
    hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1, head_dim=128
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A single-file checkpoint and the greedy tokens it produces."""
    model_dir = tiny_checkpoint(ARCH, tmp_path_factory.mktemp("single"))
    tokens = LLM(model_dir, dtype=torch.float32, progress=False).generate(
        [[1, 2, 3]], SamplingParams(max_tokens=4)
    )
    return model_dir, tokens[0].token_ids


def _edit(model_dir, change) -> None:
    path = model_dir / "model.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def test_sharded_checkpoint_with_index_loads_the_same_weights(tmp_path, reference):
    model_dir = tiny_checkpoint(ARCH, tmp_path, max_shard_size="20KB")
    assert (
        len(list(model_dir.glob("*.safetensors"))) > 1
        and (model_dir / "model.safetensors.index.json").is_file()
    )
    out = LLM(model_dir, dtype=torch.float32, progress=False).generate(
        [[1, 2, 3]], SamplingParams(max_tokens=4)
    )
    assert out[0].token_ids == reference[1]


def test_missing_tensor_is_named(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    _edit(model_dir, lambda t: t.pop("model.layers.1.self_attn.k_norm.weight"))
    with pytest.raises(CheckpointError, match=r"missing tensor model\.layers\.1\.self_attn\.k_norm\.weight"):
        LLM(model_dir, progress=False)


def test_unexpected_tensor_names_file_and_tensor(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    _edit(model_dir, lambda t: t.update({"model.layers.0.mlp.extra.weight": torch.zeros(2)}))
    with pytest.raises(
        CheckpointError, match=r"model\.safetensors: unexpected tensor model\.layers\.0\.mlp\.extra"
    ):
        LLM(model_dir, progress=False)


def test_wrong_shape_names_file_tensor_and_shapes(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    _edit(model_dir, lambda t: t.update({"model.layers.0.mlp.up_proj.weight": torch.zeros(95, 64)}))
    with pytest.raises(
        CheckpointError,
        match=r"model\.safetensors: tensor model\.layers\.0\.mlp\.up_proj\.weight "
        r"has shape \[95, 64\], expected \[96, 64\]",
    ):
        LLM(model_dir, progress=False)


def test_truncated_file_is_reported(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    path = model_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        LLM(model_dir, progress=False)


def test_unknown_architecture_lists_the_supported_ones(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError,
        match=r"'GPT2LMHeadModel' is not supported; supported: DeepseekV3ForCausalLM, "
        r"GptOssForCausalLM, LlamaForCausalLM",
    ):
        LLM(model_dir, progress=False)


def test_pickled_checkpoints_are_refused(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    (model_dir / "model.safetensors").rename(model_dir / "pytorch_model.bin")
    with pytest.raises(
        CheckpointError, match=r"no \*\.safetensors files \(found pytorch_model\.bin: pickled"
    ):
        LLM(model_dir, progress=False)


def _layers(llm, kind):
    return [m for m in llm.model.modules() if isinstance(m, kind)]


def test_fp8_kv_cache_reads_calibrated_scales_in_either_spelling(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    scales = {  # llm-compressor's names for layer 0, ModelOpt's for layer 1
        "model.layers.0.self_attn.k_scale": torch.tensor(0.5),
        "model.layers.0.self_attn.v_scale": torch.tensor(0.25),
        "model.layers.1.self_attn.k_proj.k_scale": torch.tensor(2.0),
        "model.layers.1.self_attn.v_proj.v_scale": torch.tensor(4.0),
    }
    _edit(model_dir, lambda t: t.update(scales))
    fp8 = LLM(model_dir, dtype=torch.float32, kv_cache_dtype=torch.float8_e4m3fn, progress=False)
    got = [(a.k_scale.item(), a.v_scale.item()) for a in _layers(fp8, Attention)]
    assert got == [(0.5, 0.25), (2.0, 4.0)]
    assert len(fp8.generate([[1, 2, 3]], SamplingParams(max_tokens=3))[0].token_ids) == 3
    # a cache in the model dtype has no scales: the tensors are checked but not read
    plain = LLM(model_dir, dtype=torch.float32, progress=False)
    assert all(a.k_scale is None for a in _layers(plain, Attention))


def test_fp8_kv_cache_without_scales_uses_one_and_a_misshaped_scale_is_named(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    fp8 = LLM(model_dir, dtype=torch.float32, kv_cache_dtype=torch.float8_e4m3fn, progress=False)
    assert all(a.k_scale.item() == a.v_scale.item() == 1.0 for a in _layers(fp8, Attention))
    _edit(model_dir, lambda t: t.update({"model.layers.0.self_attn.k_scale": torch.ones(2)}))
    with pytest.raises(CheckpointError, match=r"tensor model\.layers\.0\.self_attn\.k_scale has shape \[2\]"):
        LLM(model_dir, kv_cache_dtype=torch.float8_e4m3fn, progress=False)


def _fp8_with_dense_modules(tmp_path, dense_prefix: str, patterns: list[str]):
    """An fp8 block checkpoint whose modules under `dense_prefix` are stored dense (the dequantized weights),
    with quantization_config.modules_to_not_convert = patterns."""
    source = tiny_checkpoint(ARCH, tmp_path / "source", **FP8_SHAPES)
    fp8_block_checkpoint(source, tmp_path / "fp8", tmp_path / "dense")
    dense = load_file(tmp_path / "dense" / "model.safetensors")

    def keep_dense(tensors):
        for name in [n for n in tensors if n.startswith(dense_prefix)]:
            tensors.pop(name)
        tensors.update({n: t for n, t in dense.items() if n.startswith(dense_prefix)})

    _edit(tmp_path / "fp8", keep_dense)
    config_path = tmp_path / "fp8" / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_config"]["modules_to_not_convert"] = patterns
    config_path.write_text(json.dumps(config))
    return tmp_path / "fp8", tmp_path / "dense"


def _linears(llm) -> dict[str, LinearBase]:
    return {name: m for name, m in llm.model.named_modules() if isinstance(m, LinearBase)}


def test_modules_to_not_convert_load_dense_weights(tmp_path):
    fp8_dir, dense_dir = _fp8_with_dense_modules(tmp_path, "model.layers.0.mlp.", ["model.layers.0.mlp"])
    fp8, dense = (
        _linears(LLM(fp8_dir, dtype=torch.float32, progress=False)),
        _linears(LLM(dense_dir, dtype=torch.float32, progress=False)),
    )
    assert type(fp8["model.layers.1.mlp.down_proj"].scheme).__name__ == "Fp8Linear"
    for name in ("model.layers.0.mlp.gate_up_proj", "model.layers.0.mlp.down_proj"):
        assert type(fp8[name].scheme).__name__ == "UnquantizedLinear"
        x = torch.randn(3, fp8[name].in_features)
        torch.testing.assert_close(fp8[name](x), dense[name](x), rtol=0, atol=0)


def test_modules_to_not_convert_must_agree_across_a_merged_layer(tmp_path):
    fp8_dir, _ = _fp8_with_dense_modules(tmp_path, "\0", ["model.layers.1.self_attn.q_proj"])
    with pytest.raises(ValueError, match=r"qkv_proj: modules_to_not_convert leaves .*q_proj.* dense"):
        LLM(fp8_dir, progress=False)
