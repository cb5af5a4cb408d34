"""The modules a quantized checkpoint leaves unquantized, in every producer's spelling, as the regular
expressions of `modules_to_not_convert` (transformers' key, which the model loader applies): ModelOpt's
`exclude_modules` (shell wildcards, "model.layers.*.mlp*"), compressed-tensors' `ignore` (module names, or
"re:" regular expressions). Also ModelOpt's hf_quant_config.json, read when config.json has no
quantization_config."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any


def dense_patterns(config: Mapping[str, Any] | None) -> list[str]:
    """The regular expressions of the modules a checkpoint leaves unquantized, from ModelOpt's
    exclude_modules (shell wildcards) or compressed-tensors' ignore ("re:" patterns or names), as
    `modules_to_not_convert` takes them."""
    config = config or {}
    patterns = list(config.get("modules_to_not_convert") or ())
    for wildcard in config.get("exclude_modules") or ():
        patterns.append(fnmatch.translate(wildcard))
    for entry in config.get("ignore") or ():
        patterns.append(entry[3:] if entry.startswith("re:") else re.escape(entry))
    return patterns


def normalize_config(
    config: Mapping[str, Any] | None, hf_quant_config: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """A checkpoint's quantization_config as the schemes read it: ModelOpt's hf_quant_config.json form
    ({"producer": {"name": "modelopt"}, "quantization": {...}}) when config.json has none, and the modules
    left dense as `modules_to_not_convert` regular expressions. None: unquantized."""
    if config is None and hf_quant_config is not None:
        config = {"quant_method": "modelopt", **dict(hf_quant_config.get("quantization") or {})}
    if config is None:
        return None
    patterns = dense_patterns(config)
    return {**config, "modules_to_not_convert": patterns} if patterns else dict(config)
