"""Architectures by the name in config.json's `architectures`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch

from .config import ModelConfig
from .decoder import CausalLM
from .layers.attention import CacheConfig
from .parallel import Parallel
from .unquantized_modules import keep_dense_modules

# architecture -> "module:class" below anyaccel.models, imported when used
ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "llama:LlamaForCausalLM",
    "MistralForCausalLM": "llama:LlamaForCausalLM",
    "Qwen2ForCausalLM": "llama:Qwen2ForCausalLM",
    "Qwen3ForCausalLM": "qwen3:Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM": "qwen3_moe:Qwen3MoeForCausalLM",
    "MixtralForCausalLM": "mixtral:MixtralForCausalLM",
    "DeepseekV3ForCausalLM": "deepseek_v3:DeepseekV3ForCausalLM",
    "GptOssForCausalLM": "gpt_oss:GptOssForCausalLM",
}


def supported_architectures() -> list[str]:
    return sorted(ARCHITECTURES)


# an architecture class: cls(config, parallel, dtype, cache) -> model
Architecture = Callable[[ModelConfig, Parallel, torch.dtype, CacheConfig], CausalLM]


def model_class(config: ModelConfig) -> Architecture:
    arch = config.architecture
    target = ARCHITECTURES.get(arch)
    if target is None:
        raise ValueError(
            f"{config.path}: architecture {arch!r} is not supported; supported: "
            f"{', '.join(supported_architectures())}"
        )
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def build_model(
    config: ModelConfig, parallel: Parallel, dtype: torch.dtype, cache: CacheConfig, device: torch.device
) -> CausalLM:
    """The model for config.json's architecture, with uninitialised weights on `device`."""
    cls = model_class(config)
    with torch.device(device):
        model = cls(config, parallel, dtype, cache)
        keep_dense_modules(model, config.quantization)
    return model
