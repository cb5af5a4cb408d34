"""quantization_config["modules_to_not_convert"]: layers a quantized checkpoint stores dense.

A pattern names a module as transformers matches it: from the start of the module's name up to a module
boundary (also as a regular expression: "model.layers.1" matches "model.layers.1.mlp.up_proj" but not
"model.layers.11..."; "mlp.gate" does not match "mlp.gate_proj"), or as a suffix of the name ("lm_head",
"mlp.gate"). A merged layer (q/k/v, gate/up) reads several checkpoint modules, which must agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from .layers.linear import LinearBase, QuantConfig

BOUNDARY = r"(?:(?<=\.)|(?=\.|$))"  # the match ends at a dot, or at the end of the name


def left_dense(name: str, patterns: Sequence[str]) -> bool:
    return any(re.match(rf"(?:{p}){BOUNDARY}", name) or name.endswith(p) for p in patterns)


def keep_dense_modules(model: nn.Module, quant: QuantConfig) -> None:
    """Give every linear layer the checkpoint stores unquantized dense weights (before loading)."""
    patterns = list((quant or {}).get("modules_to_not_convert") or ())
    if not patterns:
        return
    for prefix, module in model.named_modules():
        if not isinstance(module, LinearBase):
            continue
        dense = {name: left_dense(name, patterns) for name in module.checkpoint_modules(prefix)}
        if all(dense.values()):
            module.use_scheme(None)
        elif any(dense.values()):
            raise ValueError(
                f"{prefix}: modules_to_not_convert leaves {sorted(n for n, d in dense.items() if d)} dense "
                f"but not {sorted(n for n, d in dense.items() if not d)}; this layer merges them"
            )
