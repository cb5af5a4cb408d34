"""Small random models written as GGUF files with the gguf package's own writer (GGUFWriter), for tests: any
architecture we read, each tensor in any type the gguf package can write (K-quants as random blocks with
small finite scales, since the package dequantizes them but cannot quantize them)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T


def random_blocks(qtype: T, rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
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


def quantized(x: np.ndarray, qtype: T, rng: np.random.Generator) -> np.ndarray:
    if qtype in (T.Q4_K, T.Q6_K):  # the gguf package dequantizes K-quants but cannot quantize them
        return random_blocks(qtype, x.shape[0], x.shape[1], rng)
    return gguf.quants.quantize(x, qtype)


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
    weight_scale: float = 0.08,
) -> Path:
    """A random model in GGUF; `types` overrides the type of tensors by their name inside a block;
    weight_scale is the standard deviation of the linear layers' weights."""
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

    def tensor(name: str, shape: tuple[int, ...], qtype: T, scale: float = weight_scale) -> None:
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        if qtype == T.F32:
            w.add_tensor(name, x)
        elif qtype == T.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            raw = quantized(x.reshape(-1, shape[-1]), qtype, rng)
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
