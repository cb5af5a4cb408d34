"""The built-in demo checkpoint: a small Qwen3-MoE (about 29M parameters) in Hugging Face format, built once
from a fixed seed with transformers and cached in ~/.cache/anyaccel/demo-qwen3-moe. It has no tokenizer
files, so the engine uses the byte-level tokenizer (vocabulary 384: bytes, then unused ids)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

DEMO_NAME = "demo-qwen3-moe"
DEMO_SEED = 0
DEMO_CONFIG: dict[str, Any] = dict(
    vocab_size=384,
    hidden_size=512,
    intermediate_size=1024,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=64,
    num_experts=16,
    num_experts_per_tok=4,
    moe_intermediate_size=256,
    norm_topk_prob=True,
    max_position_embeddings=4096,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
    initializer_range=0.05,
    bos_token_id=None,
    eos_token_id=None,
    architectures=["Qwen3MoeForCausalLM"],
)
DEMO_PROMPTS = (
    "The quick brown fox jumps over the lazy dog.",
    "One model, written once, runs on every accelerator.",
    "Paged attention stores keys and values in fixed-size blocks",
    "Hello",
)


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anyaccel"


def demo_checkpoint() -> Path:
    """The demo checkpoint's directory, built on first use (atomically: a partial build is never used)."""
    target = cache_dir() / DEMO_NAME
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(DEMO_SEED)
    model = AutoModelForCausalLM.from_config(Qwen3MoeConfig(**DEMO_CONFIG), dtype=torch.float32)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEMO_NAME}-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").is_file():  # not a concurrent build that finished first
            raise
    return target
