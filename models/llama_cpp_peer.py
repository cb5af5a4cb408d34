"""llama.cpp as a peer of the model benchmark, through the `llama-cpp-python` package when it is installed
(it is not a dependency of anyaccel). Greedy generation of `batch` sequences at once through llama.cpp's own
batch API (one sequence id per request, all prompts prefilled in one batch, then one token per sequence per
step), with as many threads as torch uses, on the same GGUF file."""

from __future__ import annotations

import ctypes
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def missing(model_path: str) -> str | None:
    """None when llama.cpp can run `model_path`, else why not."""
    path = Path(model_path)
    if not (path.is_file() and path.suffix.lower() == ".gguf"):
        return f"llama.cpp reads GGUF files; {model_path} is not one"
    if importlib.util.find_spec("llama_cpp") is None:
        return "the llama-cpp-python package is not installed (pip install llama-cpp-python)"
    return None


class _Engine:
    def __init__(self, path: str, n_ctx: int, n_batch: int, n_seq: int) -> None:
        import llama_cpp as L

        self.L = L
        L.llama_backend_init()
        self.model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
        params = L.llama_context_default_params()
        threads = torch.get_num_threads()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_batch, n_batch
        params.n_seq_max, params.n_threads, params.n_threads_batch = n_seq, threads, threads
        self.ctx = L.llama_init_from_model(self.model, params)
        self.kv_types = (int(params.type_k), int(params.type_v))  # GGML type ids, float16 by default
        self.vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(n_batch, 0, n_seq)

    def decode(self, items: list[tuple[int, int, int, bool]]) -> list[int]:
        """items: (token, position, sequence, wants logits) -> the greedy next token of each wanted row."""
        b = self.batch
        b.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
            b.seq_id[i][0] = seq
        if self.L.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")
        out = []
        for i, (_, _, _, logits) in enumerate(items):
            if logits:
                row = self.L.llama_get_logits_ith(self.ctx, i)
                values = np.ctypeslib.as_array(
                    ctypes.cast(row, ctypes.POINTER(ctypes.c_float)), (self.vocab,)
                )
                out.append(int(values.argmax()))
        return out

    def generate(self, prompts: list[list[int]], output_len: int) -> tuple[float, float]:
        """Greedy tokens for every prompt; (prefill seconds, decode seconds)."""
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)
        start = time.perf_counter()
        items = [(t, p, s, p == len(ids) - 1) for s, ids in enumerate(prompts) for p, t in enumerate(ids)]
        last = self.decode(items)
        prefill = time.perf_counter() - start
        lengths = [len(ids) for ids in prompts]
        for step in range(output_len - 1):
            last = self.decode([(t, lengths[s] + step, s, True) for s, t in enumerate(last)])
        return prefill, time.perf_counter() - start - prefill


def generate_greedy(
    model_path: str,
    prompts_for: Callable[..., list[list[int]]],
    batch: int,
    input_len: int,
    output_len: int,
    seed: int,
) -> dict[str, Any]:
    """One timed run after a warm-up on other prompts (the benchmark's worker contract)."""
    engine = _Engine(model_path, batch * (input_len + output_len), batch * input_len, batch)
    engine.generate(prompts_for(batch, input_len, engine.vocab, seed=seed + 1000), 4)
    prefill, decode = engine.generate(prompts_for(batch, input_len, engine.vocab, seed=seed), output_len)
    context = input_len + output_len // 2  # the mean context of a decode step, as for our engine
    read = _bytes_read(model_path, context, engine.kv_types)
    return {
        "seconds": prefill + decode,
        "tokens_per_s": batch * output_len / (prefill + decode),
        "decode_tokens_per_s": (output_len - 1) / decode if decode else None,
        "bytes_per_decode_token": read,
    }


def _bytes_read(model_path: str, context: int, kv_types: tuple[int, int]) -> int:
    """Bytes a batch-1 decode step reads: the GGUF tensors, all but the embedding table (one row of it is
    read) unless it is also the output layer, and the KV cache of `context` tokens (our engine's figure
    counts its own cache the same way)."""
    from .gguf import GgufCheckpoint

    ckpt = GgufCheckpoint(model_path)
    tied = "output.weight" not in ckpt.gguf_tensors
    weights = sum(
        int(t.n_bytes) for name, t in ckpt.gguf_tensors.items() if name != "token_embd.weight" or tied
    )
    return weights + kv_cache_bytes(ckpt.config, context, kv_types)


def kv_cache_bytes(config: dict[str, Any], context: int, kv_types: tuple[int, int]) -> int:
    """Bytes of llama.cpp's KV cache for `context` tokens of one sequence of the model `config` (Hugging Face
    names); kv_types: the GGML types of K and V."""
    import gguf

    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    values = context * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim
    total = 0
    for kind in kv_types:
        block, size = gguf.constants.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
        total += values * size // block
    return total
