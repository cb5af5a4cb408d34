"""GGUF checkpoints: the block decoders against the gguf package's own, metadata and names, and whole models
against transformers' implementation on the same small GGUF files (written here with gguf.GGUFWriter), with
their quantized layers kept quantized."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as T

from anyaccel.models import LLM, SamplingParams
from anyaccel.models.compare import compare_with_transformers
from anyaccel.models.gguf import GgufCheckpoint, GgufError, blocks
from anyaccel.models.gguf.checkpoint import pack_words
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.loader import CheckpointError

PROMPTS = [[1, 5, 9, 20, 33, 7], [3, 4]]


def _random_blocks(qtype: T, rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """K-quant rows of random bytes whose fp16 super-block scales are small and finite."""
    values, nbytes = gguf.constants.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows, k // values * nbytes), dtype=np.uint8)
    flat = raw.reshape(-1, nbytes)
    d = (rng.random((flat.shape[0], 1)) * 0.01).astype(np.float16).view(np.uint8)
    if qtype == T.Q4_K:
        flat[:, 0:2], flat[:, 2:4] = d, d[::-1]
    else:
        flat[:, 208:210] = d
    return raw


def _quantized(x: np.ndarray, qtype: T, rng: np.random.Generator) -> np.ndarray:
    if qtype in (T.Q4_K, T.Q6_K):  # the gguf package dequantizes K-quants but cannot quantize them
        return _random_blocks(qtype, x.shape[0], x.shape[1], rng)
    return gguf.quants.quantize(x, qtype)


@pytest.mark.parametrize("name", blocks.SUPPORTED)
def test_each_type_decodes_exactly_as_the_gguf_package(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 512)).astype(np.float32)
    raw = x if name == "F32" else _quantized(x, T[name], rng)
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


# --- small GGUF files ---------------------------------------------------------------------------------------

LLAMA = dict(arch="llama", linear=T.Q4_1, embed=T.Q8_0, output=None)
QWEN2 = dict(arch="qwen2", linear=T.Q4_0, embed=T.F16, output=T.Q8_0, bias=True)
# hidden 256: K-quant rows hold whole 256-value super-blocks; v and down in Q6_K as K-quant mixes store them.
# Qwen3 heads of 128 and experts of 768 features (Qwen3-30B-A3B's): transformers' GGUF loader keeps the config
# defaults of both (it maps neither attention.key_length for qwen3 nor expert_feed_forward_length).
QWEN3 = dict(
    arch="qwen3", linear=T.Q4_K, embed=T.BF16, output=T.Q6_K, hidden=256, inter=512, heads=2, kv_heads=1
)
QWEN3_MOE = dict(arch="qwen3moe", linear=T.F32, embed=T.F32, output=T.F16, hidden=256, heads=2, kv_heads=1)


def write_gguf(
    path: Path,
    arch: str,
    linear: T,
    embed: T,
    output: T | None,
    hidden: int = 64,
    inter: int = 128,
    heads: int = 4,
    kv_heads: int = 2,
    layers: int = 2,
    vocab: int = 320,
    bias: bool = False,
    qk_norm: bool = False,
    experts: int = 0,
    expert_inter: int = 768,
    types: dict[str, T] | None = None,
) -> Path:
    """A random model in GGUF; `types` overrides the type of tensors by their name inside a block."""
    rng = np.random.default_rng(len(arch) + hidden)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_context_length(512)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(hidden // heads)
    w.add_value_length(hidden // heads)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(vocab)
    if experts:
        w.add_expert_count(experts)
        w.add_expert_used_count(2)
        w.add_expert_feed_forward_length(expert_inter)

    def tensor(name: str, shape: tuple[int, ...], qtype: T, scale: float = 0.08) -> None:
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        if qtype == T.F32:
            w.add_tensor(name, x)
        elif qtype == T.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            raw = _quantized(x.reshape(-1, shape[-1]), qtype, rng)
            w.add_tensor(name, raw.reshape(*shape[:-1], -1), raw_dtype=qtype)

    def norm(name: str, size: int) -> None:
        w.add_tensor(name, (1 + 0.1 * rng.standard_normal(size)).astype(np.float32))

    d = hidden // heads
    tensor("token_embd.weight", (vocab, hidden), embed, 1.0)
    norm("output_norm.weight", hidden)
    if output is not None:
        tensor("output.weight", (vocab, hidden), output)
    for i in range(layers):
        b = f"blk.{i}."
        pick = {**(types or {})}
        norm(b + "attn_norm.weight", hidden)
        norm(b + "ffn_norm.weight", hidden)
        shapes = {
            "attn_q": (heads * d, hidden),
            "attn_k": (kv_heads * d, hidden),
            "attn_v": (kv_heads * d, hidden),
        }
        shapes["attn_output"] = (hidden, heads * d)
        if not experts:
            shapes |= {"ffn_gate": (inter, hidden), "ffn_up": (inter, hidden), "ffn_down": (hidden, inter)}
        for name, shape in shapes.items():
            tensor(f"{b}{name}.weight", shape, pick.get(name, linear))
        if bias:
            for name in ("attn_q", "attn_k", "attn_v"):
                w.add_tensor(
                    f"{b}{name}.bias", (0.1 * rng.standard_normal(shapes[name][0])).astype(np.float32)
                )
        if qk_norm:
            norm(b + "attn_q_norm.weight", d)
            norm(b + "attn_k_norm.weight", d)
        if experts:
            tensor(b + "ffn_gate_inp.weight", (experts, hidden), T.F32, 0.5)
            tensor(b + "ffn_gate_exps.weight", (experts, expert_inter, hidden), linear)
            tensor(b + "ffn_up_exps.weight", (experts, expert_inter, hidden), linear)
            tensor(b + "ffn_down_exps.weight", (experts, hidden, expert_inter), linear)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


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


def test_quantized_layers_stay_quantized(files):
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


def test_dequantize_at_load_is_an_option_with_the_same_values(files):
    llm, quantized = _generate(files["llama"])
    dense, dequantized = _generate(files["llama"], dequantize=True)
    assert set(dense.runner.gguf_load.schemes.values()) == {"none"}
    for a, b in zip(quantized, dequantized, strict=True):
        assert a.token_ids == b.token_ids
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-4 * a.logits.abs().max().item())


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
