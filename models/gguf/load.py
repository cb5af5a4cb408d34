"""Loading a GGUF checkpoint into a model built from its config: every linear layer gets the scheme that
keeps its GGUF type as stored (anyaccel.schemes.grouped), then each loader slot is filled from the file.

Layers stay quantized unless `dequantize=True`. A merged layer (q/k/v, gate/up) whose parts have different
kinds of type (a 4-bit and an 8-bit one, as K-quant mixes store v_proj) is dequantized, and said so in
`GgufLoad.dequantized`. Embedding rows are dequantized at load (a lookup reads one row); a quantized LM head
keeps its tensor quantized (the embedding's again when tied).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..layers.embedding import ParallelLMHead
from ..layers.linear import LinearBase
from ..layers.weights import model_slots
from ..loader import CheckpointError, process_after_loading, progress_bar
from .checkpoint import GgufCheckpoint, scheme_for
from .metadata import GgufError


@dataclass
class GgufLoad:
    """What loading did: the GGUF type of each linear layer's parts and the layers it dequantized."""

    types: dict[str, list[str]] = field(default_factory=dict)
    dequantized: list[str] = field(default_factory=list)
    schemes: dict[str, str] = field(default_factory=dict)  # layer -> the quant_method it runs ("none": dense)
    tensor_types: dict[str, int] = field(default_factory=dict)  # GGUF type -> tensors of that type

    def to_json(self) -> dict:
        counts: dict[str, int] = {}
        for method in self.schemes.values():
            counts[method] = counts.get(method, 0) + 1
        return {"types": self.tensor_types, "schemes": counts, "dequantized_layers": self.dequantized}


def assign_schemes(
    model: nn.Module, ckpt: GgufCheckpoint, *, dequantize: bool = False, activations: str = "float"
) -> GgufLoad:
    """Give each linear layer (and the LM head) the scheme of its GGUF type, before loading. activations:
    "float", or "int8" for the schemes' int8-activation GEMMs (see anyaccel.schemes.grouped)."""
    report = GgufLoad()
    for t in ckpt.gguf_tensors.values():
        report.tensor_types[t.tensor_type.name] = report.tensor_types.get(t.tensor_type.name, 0) + 1
    for prefix, module in list(model.named_modules()):
        if isinstance(module, ParallelLMHead):
            qtype = ckpt.type_of("lm_head")
            report.types[prefix] = [qtype]
            scheme = None if dequantize else scheme_for(qtype, activations)
            if scheme is not None:
                module.quantize(scheme)
            report.schemes[prefix] = (scheme or {}).get("quant_method", "none")
            continue
        if not isinstance(module, LinearBase) or prefix.endswith("lm_head.proj"):
            continue
        types = [ckpt.type_of(name) for name in module.checkpoint_modules(prefix)]
        report.types[prefix] = types
        schemes = [scheme_for(t, activations) for t in types]
        report.schemes[prefix] = "none"
        if dequantize or not any(schemes):
            continue
        scheme = _shared_scheme(schemes)
        if scheme is None:  # the parts of one fused layer stored in types that no one scheme reads
            report.dequantized.append(prefix)
            continue
        module.use_scheme(scheme)
        report.schemes[prefix] = scheme["quant_method"]
    return report


def _shared_scheme(schemes: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The one scheme that serves every part of a fused layer (q, k, v of one projection), or None. Parts
    that differ only in the width of their stored scales (Q4_0 next to Q4_K) share float32, which holds both
    exactly."""
    known = [s for s in schemes if s is not None]
    if len(known) < len(schemes):
        return None
    if len({s.get("scales_dtype") for s in known}) > 1:
        known = [{**s, "scales_dtype": "float32"} for s in known]
    return known[0] if all(s == known[0] for s in known) else None


def load_gguf(model: nn.Module, ckpt: GgufCheckpoint, *, progress: bool = True) -> None:
    """Fill every parameter of `model` from the GGUF file, then let layers post-process (bind kernels)."""
    _fill(model, ckpt, progress)  # its slots, whose load closures hold the loaded parameters, are gone after
    process_after_loading(model, ckpt.path)


def _fill(model: nn.Module, ckpt: GgufCheckpoint, progress: bool) -> None:
    slots = list(model_slots(model))
    bar = progress_bar(len(slots), enabled=progress)
    for slot in slots:
        if not ckpt.has(slot.name):
            if slot.optional:
                continue
            needed = type(model).__name__
            raise CheckpointError(f"{ckpt.path}: no GGUF tensor for {slot.name} (needed by {needed})")
        try:
            src = ckpt.tensor(slot.name)
        except GgufError as exc:
            raise CheckpointError(str(exc)) from None
        if tuple(src.shape) != slot.shape:
            raise CheckpointError(
                f"{ckpt.path}: tensor for {slot.name} has shape {list(src.shape)}, "
                f"expected {list(slot.shape)}"
            )
        if slot.load is not None:
            with torch.no_grad():
                slot.load(src)
        bar.update(1)
    bar.close()
