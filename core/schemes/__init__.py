"""Quantization schemes (import anyaccel.schemes): how a layer creates, post-processes and applies its
weights for each checkpoint format, built only on anyaccel ops. See base.py and docs/quantization.md.

    scheme = anyaccel.schemes.linear_scheme(hf_config.get("quantization_config"))
    scheme.create_weights(layer, 4096, [4096, 1024, 1024], torch.bfloat16)  # a merged qkv projection
    ...load the checkpoint into layer's parameters...
    scheme.process_weights_after_loading(layer)
    y = scheme.apply(layer, x, bias)
"""

from __future__ import annotations

from . import fp8, grouped, int8, nvfp4, unquantized, w4a16  # noqa: F401  (each registers its quant_method)
from .base import LinearScheme, MoEScheme, ParamLayout, linear_scheme, moe_scheme, register
from .dense_modules import normalize_config

__all__ = [
    "LinearScheme",
    "MoEScheme",
    "ParamLayout",
    "linear_scheme",
    "moe_scheme",
    "normalize_config",
    "register",
]
