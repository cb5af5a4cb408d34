"""A GGUF file's metadata as a Hugging Face config.json, and GGUF tensor names as Hugging Face ones.

Architectures: llama (also Mistral-style llama files), qwen2, qwen3, qwen3moe. Keys read (ARCH is
`general.architecture`): ARCH.block_count, .embedding_length, .feed_forward_length, .attention.head_count,
.attention.head_count_kv, .attention.key_length, .attention.layer_norm_rms_epsilon, .rope.freq_base,
.context_length, .vocab_size (else the tokenizer's size), and for qwen3moe .expert_count,
.expert_used_count, .expert_feed_forward_length; token ids from tokenizer.ggml.*.
"""

from __future__ import annotations

import re
from typing import Any

ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3moe": "Qwen3MoeForCausalLM",
}
# llama.cpp's converter permutes the rows of Q and K of these architectures for its interleaved rotary
# layout; the Hugging Face models rotate halves, so the permutation is undone at load.
PERMUTED_QK = ("llama",)

# GGUF per-layer tensor -> Hugging Face module below model.layers.N
LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_gate_inp": "mlp.gate",
}
GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
EXPERT_NAMES = {"ffn_gate_exps": "gate_proj", "ffn_up_exps": "up_proj", "ffn_down_exps": "down_proj"}


class GgufError(ValueError):
    """A GGUF file we cannot read or run (the message names the file and what is wrong)."""


def hf_config(path: str, fields: dict[str, Any], tensor_names: set[str]) -> dict[str, Any]:
    """config.json for the file's metadata `fields` (key -> value) and its tensor names."""
    arch = fields.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise GgufError(
            f"{path}: GGUF architecture {arch!r} is not supported; supported: {', '.join(ARCHITECTURES)}"
        )

    def get(key: str, default: Any = None) -> Any:
        value = fields.get(f"{arch}.{key}", default)
        if value is None:
            raise GgufError(f"{path}: GGUF metadata has no {arch}.{key}")
        return value

    heads = int(get("attention.head_count"))
    hidden = int(get("embedding_length"))
    vocab = fields.get(f"{arch}.vocab_size") or len(fields.get("tokenizer.ggml.tokens") or ())
    if not vocab:
        raise GgufError(f"{path}: GGUF metadata gives no vocabulary size ({arch}.vocab_size or tokens)")
    config: dict[str, Any] = {
        "architectures": [ARCHITECTURES[arch]],
        "model_type": arch,
        "vocab_size": int(vocab),
        "hidden_size": hidden,
        "intermediate_size": int(get("feed_forward_length", 0)),
        "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(get("attention.head_count_kv", heads)),
        "head_dim": int(get("attention.key_length", hidden // heads)),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": float(get("rope.freq_base", 10000.0)),
        "max_position_embeddings": int(get("context_length", 4096)),
        "tie_word_embeddings": "output.weight" not in tensor_names,
        "attention_bias": "blk.0.attn_q.bias" in tensor_names,
        "bos_token_id": fields.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": fields.get("tokenizer.ggml.eos_token_id"),
        "dtype": "float32",  # what the dequantized values are exact in; --dtype picks another
    }
    scaling = fields.get(f"{arch}.rope.scaling.type")
    if scaling not in (None, "none"):
        raise GgufError(f"{path}: rope scaling {scaling!r} in GGUF metadata is not supported yet")
    if arch == "qwen3moe":
        config |= {
            "num_experts": int(get("expert_count")),
            "num_experts_per_tok": int(get("expert_used_count")),
            "moe_intermediate_size": int(get("expert_feed_forward_length")),
            "norm_topk_prob": True,  # every Qwen3-MoE release normalises its top-k weights
            "decoder_sparse_step": 1,
            "mlp_only_layers": [],
        }
    return config


_LAYER = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)$")


def hf_name(gguf_name: str) -> tuple[str, int | None] | None:
    """A GGUF tensor name -> (Hugging Face tensor name, expert index None) or, for a stacked expert tensor,
    (the name pattern with "{e}" for the expert, -1); None for tensors no model reads (rope_freqs)."""
    base, _, kind = gguf_name.rpartition(".")
    if base in GLOBAL_NAMES:
        return f"{GLOBAL_NAMES[base]}.{kind}", None
    match = _LAYER.match(gguf_name)
    if not match:
        return None
    layer, part, kind = match.groups()
    if part in LAYER_NAMES:
        return f"model.layers.{layer}.{LAYER_NAMES[part]}.{kind}", None
    if part in EXPERT_NAMES:
        return f"model.layers.{layer}.mlp.experts.{{e}}.{EXPERT_NAMES[part]}.{kind}", -1
    return None


def unpermute_rows(rows: Any, heads: int) -> Any:
    """Undo llama.cpp's Q/K row permutation (numpy array [N, ...], N = heads * head_dim): within each head
    the converter interleaved the two rotary halves; this puts them back one after the other."""
    n = rows.shape[0]
    rest = rows.shape[1:]
    return rows.reshape(heads, n // heads // 2, 2, *rest).swapaxes(1, 2).reshape(n, *rest)
