"""GGUF checkpoints: the block decoders against the gguf package's own, metadata and names, and whole models
against transformers' implementation on the same small GGUF files (written with gguf.GGUFWriter by
models/gguf/testing.py), with their quantized layers kept quantized."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as T

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.compare import compare_with_transformers
from anyaccel.models.gguf import GgufCheckpoint, GgufError, blocks
from anyaccel.models.gguf.checkpoint import pack_words
from anyaccel.models.gguf.testing import LLAMA, QWEN2, QWEN3, QWEN3_MOE, quantized, write_gguf
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.loader import CheckpointError

PROMPTS = [[1, 5, 9, 20, 33, 7], [3, 4]]


@pytest.mark.parametrize("name", blocks.SUPPORTED)
def test_each_type_decodes_exactly_as_the_gguf_package(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 512)).astype(np.float32)
    raw = x if name == "F32" else quantized(x, T[name], rng)
    ref = gguf.quants.dequantize(raw, T[name])
    np.testing.assert_array_equal(blocks.dequantize(name, raw, ref.shape), ref)
    if name in blocks.AFFINE4:  # the components the kernels read give the same values
        q, scale, offset = blocks.affine4(name, raw)
        g = q.shape[1] // scale.shape[1]
        assert g == 32 and q.min() >= 0 and q.max() <= 15
        rebuilt = q * np.repeat(scale, g, 1) + np.repeat(offset, g, 1)
        np.testing.assert_array_equal(rebuilt.astype(np.float32), ref)
        words = pack_words(q)
        unpacked = (words.view(np.uint32)[..., None] >> np.arange(0, 32, 4, dtype=np.uint32)) & 0xF
        np.testing.assert_array_equal(unpacked.reshape(q.shape), q)
    if name in blocks.INT8:
        q, scale = blocks.int8(name, raw)
        rebuilt = q.astype(np.float32) * np.repeat(scale, blocks.INT8[name], 1)
        np.testing.assert_array_equal(rebuilt, ref)


def test_unsupported_types_are_named():
    with pytest.raises(ValueError, match="Q5_0 is not supported"):
        blocks.dequantize("Q5_0", np.zeros((1, 22), np.uint8), (1, 32))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    q6 = {"attn_v": T.Q6_K, "ffn_down": T.Q6_K}
    return {
        "llama": write_gguf(root / "llama.gguf", **LLAMA),
        "qwen2": write_gguf(root / "qwen2.gguf", **QWEN2),
        "qwen3": write_gguf(root / "qwen3.gguf", **QWEN3, qk_norm=True, types=q6),
        "qwen3moe": write_gguf(root / "qwen3moe.gguf", **QWEN3_MOE, qk_norm=True, experts=4),
    }


def _generate(path: Path, **kwargs) -> tuple[LLM, list]:
    llm = LLM(path, progress=False, **kwargs)
    params = SamplingParams(max_tokens=5, ignore_eos=True, return_logits=True)
    return llm, llm.generate(PROMPTS, params)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "qwen3moe"])
def test_models_match_transformers_on_the_same_gguf(files, arch):
    llm, outputs = _generate(files[arch])
    cmp = compare_with_transformers(files[arch], outputs, torch.float32)
    assert cmp.tokens_match, cmp
    assert cmp.ok, cmp
    want = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
    assert llm.config.architecture == want.get(arch, "Qwen3MoeForCausalLM")


def test_quantized_layers_stayquantized(files):
    llm, _ = _generate(files["llama"])
    load = llm.runner.gguf_load
    assert set(load.schemes.values()) == {"w4_affine", "w8_group"}
    assert load.schemes["lm_head"] == "w8_group"  # the tied Q8_0 embedding, kept as int8 for the head
    ops = {r.op: r.spec for r in resolutions(llm.model)}
    assert ops["quant.w4a16_gemm"].format == "affine" and ops["quant.w4a16_gemm"].group_size == 32
    assert "linear.gemm" not in ops
    stored = dict(llm.model.named_parameters())
    assert stored["model.layers.0.self_attn.qkv_proj.qweight"].dtype == torch.int32
    assert stored["lm_head.proj.qweight"].dtype == torch.int8


def test_k_quants_keep_their_kind_and_mixed_merged_layers_are_dequantized(files):
    llm, _ = _generate(files["qwen3"])
    load = llm.runner.gguf_load
    # q/k are Q4_K and v is Q6_K: one merged layer cannot hold both, so it is dequantized and said so
    assert load.dequantized == ["model.layers.0.self_attn.qkv_proj", "model.layers.1.self_attn.qkv_proj"]
    assert load.schemes["model.layers.0.mlp.gate_up_proj"] == "w4_affine"  # Q4_K
    assert load.schemes["model.layers.0.mlp.down_proj"] == "w8_group"  # Q6_K
    assert load.schemes["lm_head"] == "w8_group"


def test_affine_scales_keep_the_width_the_file_stores(files, tmp_path):
    """Q4_1's scales and offsets stay float16 as stored, Q4_K's products float32; a fused layer whose parts
    differ only in that width (Q4_0 next to Q4_K) shares float32 and stays quantized, with the same logits
    as transformers."""
    params = dict(_generate(files["llama"])[0].model.named_parameters())
    assert params["model.layers.0.self_attn.qkv_proj.scales"].dtype == torch.float16
    assert params["model.layers.0.mlp.down_proj.qzeros"].dtype == torch.float16
    path = write_gguf(tmp_path / "mixed.gguf", **QWEN3, qk_norm=True, types={"attn_k": T.Q4_0})
    llm, outputs = _generate(path)
    assert llm.runner.gguf_load.dequantized == []
    assert llm.runner.gguf_load.schemes["model.layers.0.self_attn.qkv_proj"] == "w4_affine"
    params = dict(llm.model.named_parameters())
    assert params["model.layers.0.self_attn.qkv_proj.scales"].dtype == torch.float32
    spec = {r.op: r.spec for r in resolutions(llm.model)}["quant.w4a16_gemm"]
    assert spec.scales_dtype == torch.float32
    cmp = compare_with_transformers(path, outputs, torch.float32)
    assert cmp.tokens_match and cmp.ok, cmp


def test_q4_0_offsets_past_float16_are_a_clear_error(tmp_path):
    path = write_gguf(tmp_path / "huge.gguf", **QWEN2, weight_scale=3e4)  # |d| = amax / 8 > 8188
    with pytest.raises(CheckpointError, match="overflow float16"):
        LLM(path, progress=False)


def test_dequantize_at_load_is_an_option_with_the_same_values(files):
    llm, quantized = _generate(files["llama"])
    dense, dequantized = _generate(files["llama"], dequantize=True)
    assert set(dense.runner.gguf_load.schemes.values()) == {"none"}
    for a, b in zip(quantized, dequantized, strict=True):
        assert a.token_ids == b.token_ids
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-4 * a.logits.abs().max().item())


def test_int8_activations_bind_the_a8_gemms_and_match_their_reference(files, monkeypatch):
    """activations="int8" (llama.cpp's arithmetic) binds quant.w4a8_gemm / w8a8_gemm; the bound kernels (the
    CPU plugin's where it loads) give the logits the torch reference kernels give; the float path differs."""
    llm, fast = _generate(files["llama"], activations="int8")
    ops = {r.op: r for r in resolutions(llm.model)}
    assert {"quant.w4a8_gemm", "quant.w8a8_gemm"} <= set(ops)
    assert "quant.w4a16_gemm" not in ops and "quant.w8a16_gemm" not in ops
    monkeypatch.setenv(
        "ANYACCEL_KERNELS", "quant.w4a8_gemm=reference.w4a8_gemm,quant.w8a8_gemm=reference.w8a8_gemm"
    )
    anyaccel.reset()
    _, reference = _generate(files["llama"], activations="int8")
    _, exact = _generate(files["llama"])
    for a, r, e in zip(fast, reference, exact, strict=True):
        scale = r.logits.abs().max().item()
        torch.testing.assert_close(a.logits, r.logits, rtol=0, atol=1e-4 * scale)
        assert (a.logits - e.logits).abs().max().item() > 1e-4 * scale  # the activations were quantized
    with pytest.raises(ValueError, match="activations must be one of"):
        LLM(files["llama"], progress=False, activations="int4")


def test_unsupported_tensor_types_and_architectures_are_clear_errors(tmp_path):
    path = write_gguf(tmp_path / "q5.gguf", **LLAMA, types={"attn_k": T.Q5_0})
    with pytest.raises(CheckpointError, match=r"blk\.0\.attn_k\.weight.*Q5_0 is not supported"):
        LLM(path, progress=False)
    other = write_gguf(tmp_path / "gpt2.gguf", **{**LLAMA, "arch": "gpt2"})
    with pytest.raises(GgufError, match="architecture 'gpt2' is not supported"):
        GgufCheckpoint(other)


def test_config_comes_from_the_metadata(files):
    config = GgufCheckpoint(files["qwen3moe"]).config
    assert config["architectures"] == ["Qwen3MoeForCausalLM"]
    assert (config["num_experts"], config["num_experts_per_tok"], config["moe_intermediate_size"]) == (
        4,
        2,
        768,
    )
    assert (config["hidden_size"], config["num_key_value_heads"], config["head_dim"]) == (256, 1, 128)
    assert not config["tie_word_embeddings"]
    assert GgufCheckpoint(files["llama"]).config["tie_word_embeddings"]
    assert GgufCheckpoint(files["qwen2"]).config["attention_bias"]


def test_a_float32_copy_is_the_same_model_with_dense_layers(files, tmp_path):
    from anyaccel.models.gguf.convert import write_f32

    copy = write_f32(files["llama"], tmp_path / "llama-f32.gguf")
    assert GgufCheckpoint(copy).config == GgufCheckpoint(files["llama"]).config
    _, quantized = _generate(files["llama"])
    dense, outputs = _generate(copy)
    assert set(dense.runner.gguf_load.schemes.values()) == {"none"}
    assert set(dense.runner.gguf_load.tensor_types) == {"F32"}
    for a, b in zip(quantized, outputs, strict=True):
        assert a.token_ids == b.token_ids
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-4 * a.logits.abs().max().item())


def _resident_kb(path: Path) -> int:
    """kB of `path`'s memory maps resident in this process (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if (
            head and "-" in head[0] and len(head) >= 5
        ):  # a mapping's first line: address perms offset dev inode path
            inside = len(head) >= 6 and head[5] == str(path)
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_converted_tensors_leave_no_file_pages_resident(files):
    """A loaded tensor is a copy: the file's pages it was read from are dropped from the process (they would
    otherwise double a float32 model's resident memory); reading again faults them back, same values."""
    path = files["qwen3moe"].resolve()  # float32 experts: megabytes of tensor data
    ckpt = GgufCheckpoint(path)
    first = {m: ckpt.tensor(f"{m}.weight") for m in ckpt.modules}
    data = sum(int(t.n_bytes) for t in ckpt.gguf_tensors.values())
    assert data > 4 << 20
    assert _resident_kb(path) * 1024 < data // 4, "the tensors' pages stayed resident"
    for module, values in first.items():
        assert torch.equal(ckpt.tensor(f"{module}.weight"), values)
