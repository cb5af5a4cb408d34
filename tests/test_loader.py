"""The safetensors loader: sharded checkpoints, and a clear error naming file and tensor for every defect."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.models import LLM, SamplingParams
from anyaccel.models.loader import CheckpointError
from anyaccel.models.testing import tiny_checkpoint

ARCH = "Qwen3ForCausalLM"


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
        r"LlamaForCausalLM",
    ):
        LLM(model_dir, progress=False)


def test_pickled_checkpoints_are_refused(tmp_path):
    model_dir = tiny_checkpoint(ARCH, tmp_path)
    (model_dir / "model.safetensors").rename(model_dir / "pytorch_model.bin")
    with pytest.raises(
        CheckpointError, match=r"no \*\.safetensors files \(found pytorch_model\.bin: pickled"
    ):
        LLM(model_dir, progress=False)
