"""A checkpoint's config.json as attributes, with the few derived values every architecture needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


class ModelConfig:
    """config.json of a Hugging Face checkpoint. `config.x` reads key x (AttributeError naming the file when
    absent); `config.get(x, default)` for optional keys."""

    def __init__(self, raw: dict[str, Any], path: Path | str = "config.json") -> None:
        self.raw = raw
        self.path = Path(path)
        self.max_model_len: int | None = None  # the engine's, once set: tables sized by positions use it

    @classmethod
    def from_dir(cls, model_dir: Path | str) -> ModelConfig:
        path = Path(model_dir) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no config.json (expected a Hugging Face checkpoint directory)")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return cls(raw, path)

    def __getattr__(self, name: str) -> Any:
        if name in ("raw", "path", "max_model_len"):
            raise AttributeError(name)
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(f"{self.path}: config.json has no {name!r}") from None

    def get(self, name: str, default: Any = None) -> Any:
        value = self.raw.get(name)
        return default if value is None else value

    @property
    def architecture(self) -> str:
        archs = self.get("architectures") or []
        if len(archs) != 1:
            raise ValueError(f"{self.path}: 'architectures' must name exactly one architecture, got {archs}")
        return archs[0]

    @property
    def quantization(self) -> dict[str, Any] | None:
        """The checkpoint's quantization_config (None: unquantized); it selects every layer's scheme. ModelOpt
        may write it as hf_quant_config.json beside config.json instead; the modules a producer leaves dense
        are normalized to modules_to_not_convert (anyaccel.schemes.dense_modules)."""
        from anyaccel.schemes import normalize_config

        hf_quant = self.path.parent / "hf_quant_config.json"
        side = json.loads(hf_quant.read_text()) if hf_quant.is_file() else None
        return normalize_config(self.get("quantization_config"), side)

    @property
    def head_dim(self) -> int:
        return self.get("head_dim") or self.hidden_size // self.num_attention_heads

    @property
    def checkpoint_dtype(self) -> torch.dtype:
        name = self.get("dtype") or self.get("torch_dtype") or "float32"
        return getattr(torch, name)

    def sliding_window(self, layer: int) -> int:
        """The attention window of `layer` (-1: none). `layer_types` decides per layer when present (Qwen2/3);
        otherwise `sliding_window` applies to every layer (Mistral, Mixtral)."""
        window = self.get("sliding_window")
        if not window or self.get("use_sliding_window", True) is False:
            return -1
        types = self.get("layer_types")
        if types is not None:
            return window if types[layer] == "sliding_attention" else -1
        return window


def resolve_dtype(
    dtype: str | torch.dtype, config: ModelConfig, platform_dtypes: tuple[str, ...]
) -> torch.dtype:
    """ "auto" is the checkpoint's dtype when the platform computes in it, else float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        chosen = config.checkpoint_dtype
        return chosen if str(chosen).removeprefix("torch.") in platform_dtypes else torch.float32
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")
    return getattr(torch, dtype)
