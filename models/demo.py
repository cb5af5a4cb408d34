"""The built-in demo checkpoint: a small Qwen3-MoE (about 29M parameters) in Hugging Face format, built once
from a fixed seed with transformers and cached in ~/.cache/anyaccel/demo-qwen3-moe-v<DEMO_VERSION>. The
tensors transformers initialises to a constant (the norm weights) get random values around it
(random_constants), so that parity with transformers also checks that every norm applies its weight. It has
no tokenizer files, so the engine uses the byte-level tokenizer (vocabulary 384: bytes, then unused ids)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from anyaccel.env import cache_dir

from .random_constants import randomize_constants

DEMO_NAME = "demo-qwen3-moe"
# Part of the cache directory's name: bump it whenever the weights built here change, so that a cached build
# of an older version is not used.
DEMO_VERSION = 2
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


def demo_checkpoint() -> Path:
    """The demo checkpoint's directory, built on first use (atomically: a partial build is never used)."""
    target = cache_dir() / f"{DEMO_NAME}-v{DEMO_VERSION}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(DEMO_SEED)
    model = AutoModelForCausalLM.from_config(Qwen3MoeConfig(**DEMO_CONFIG), dtype=torch.float32)
    randomize_constants(model, torch.Generator().manual_seed(DEMO_SEED))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").is_file():  # not a concurrent build that finished first
            raise
    return target
