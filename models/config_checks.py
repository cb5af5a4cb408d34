"""A checkpoint's config checked before anything is built from it: a value of the wrong JSON type, a size
so large it would exhaust memory, or a count the checkpoint's tensors contradict is refused here, naming the
key and the file, instead of failing (or allocating for minutes) halfway through building the model.

The bounds are far above every released model (the largest: hidden 18432, vocab 262144, 160 layers, 128
heads, 256 experts, 10M positions) and far below what a typo or a hostile config would ask for. Positions
do not size anything by themselves: the rotary table holds what the engine can hold (max_model_len).
"""

from __future__ import annotations

import re

from .config import ModelConfig

# key -> (largest accepted value, required)
SIZES: dict[str, tuple[int, bool]] = {
    "hidden_size": (1 << 16, True),
    "num_hidden_layers": (1 << 10, True),
    "num_attention_heads": (1 << 10, True),
    "vocab_size": (1 << 21, True),
    "num_key_value_heads": (1 << 10, False),
    "head_dim": (1 << 12, False),
    "intermediate_size": (1 << 18, False),
    "moe_intermediate_size": (1 << 18, False),
    "max_position_embeddings": (1 << 27, False),
    "num_experts": (1 << 14, False),
    "num_local_experts": (1 << 14, False),
    "n_routed_experts": (1 << 14, False),
    "num_experts_per_tok": (1 << 10, False),
}
POSITIVE_NUMBERS = ("rms_norm_eps", "rope_theta")
# the first layer's tensors whose stored shape the config fixes, when the checkpoint has them unquantized
SHAPES = {
    "model.embed_tokens.weight": ("vocab_size", "hidden_size"),
    "model.layers.0.mlp.down_proj.weight": ("hidden_size", "intermediate_size"),
}
LAYER = re.compile(r"^(?:model\.layers|blk)\.(\d+)\.")


def _where(config: ModelConfig, key: str) -> str:
    return f"{config.path}: {key}"


def check_config(config: ModelConfig) -> None:
    """Raises ValueError naming the key: sizes must be ints in [1, bound] (bools and floats are not ints),
    eps and rope_theta positive numbers."""
    for key, (bound, required) in SIZES.items():
        value = config.raw.get(key)
        if value is None:
            if required:
                raise ValueError(f"{_where(config, key)} is missing (an int is expected)")
            continue
        if type(value) is not int:
            raise ValueError(f"{_where(config, key)} must be an int, got {type(value).__name__} {value!r}")
        if not 1 <= value <= bound:
            raise ValueError(f"{_where(config, key)} is {value}, outside [1, {bound}]")
    for key in POSITIVE_NUMBERS:
        value = config.raw.get(key)
        if value is not None and (type(value) not in (int, float) or not value > 0):
            raise ValueError(f"{_where(config, key)} must be a positive number, got {value!r}")


def check_against_tensors(config: ModelConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """The config agrees with the checkpoint's tensors (names and stored shapes, read from headers only):
    no more layers than the tensors hold, and the shapes it fixes equal the stored ones."""
    layers = {int(m.group(1)) for name in shapes if (m := LAYER.match(name))}  # HF and GGUF names
    if layers and config.num_hidden_layers > max(layers) + 1:
        raise ValueError(
            f"{_where(config, 'num_hidden_layers')} is {config.num_hidden_layers}, but the checkpoint's "
            f"tensors hold {max(layers) + 1} layers"
        )
    for name, keys in SHAPES.items():
        stored = shapes.get(name)
        if name.removesuffix("weight") + "weight_scale" in shapes:  # quantized, maybe packed (NVFP4)
            continue
        want = tuple(config.raw.get(k) for k in keys)
        if stored is not None and None not in want and tuple(stored) != want:
            raise ValueError(
                f"{config.path}: {'/'.join(keys)} {list(want)} disagree with tensor {name} of shape "
                f"{list(stored)}"
            )
