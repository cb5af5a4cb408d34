"""Our logits against transformers' own implementation on the same checkpoint and tokens.

transformers runs each finished sequence (prompt + our completion) in one forward pass (teacher forcing),
so every step's logits are compared position by position: the largest absolute difference, and whether
greedy decoding in transformers would have chosen the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .engine.llm import RequestOutput

# Allowed |ours - transformers| relative to the largest |logit| of a step, per compute dtype: fp32 differs by
# summation order only (a GGUF file's quantized layers too: transformers dequantizes them to the very values
# our kernels decode, q * scale + offset in float32, and only the order of the sums differs); bf16 rounds
# every layer's output (8 mantissa bits) and the two stacks round at different points (fp32
# router/rotary/accumulation here), which over a few layers reaches a few percent.
TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}


@dataclass
class Comparison:
    max_abs_diff: float  # largest |ours - transformers| over every step of every sequence
    max_abs_logit: float  # largest |transformers logit|, the scale of the difference
    tokens_match: bool  # greedy transformers picks our tokens at every step
    tolerance: float  # allowed max_abs_diff / max(1, max_abs_logit)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance * max(1.0, self.max_abs_logit)

    def to_json(self) -> dict:
        return {
            "max_abs_logit_diff": self.max_abs_diff,
            "max_abs_logit": self.max_abs_logit,
            "relative_tolerance": self.tolerance,
            "tokens_match": self.tokens_match,
            "ok": self.ok,
        }


@torch.inference_mode()
def compare_with_transformers(
    model_dir: Path | str, outputs: list[RequestOutput], dtype: torch.dtype, trust_remote_code: bool = False
) -> Comparison:
    """outputs: generated with SamplingParams(return_logits=True), greedily for tokens_match to mean much.
    model_dir: a checkpoint directory, or a GGUF file (transformers dequantizes it at load)."""
    from transformers import AutoModelForCausalLM

    path = Path(model_dir)
    if path.is_file() and path.suffix.lower() == ".gguf":
        where = {"pretrained_model_name_or_path": str(path.parent), "gguf_file": path.name}
    else:
        where = {"pretrained_model_name_or_path": str(model_dir)}
    # explicit: transformers asks on stdin when it is None
    hf = AutoModelForCausalLM.from_pretrained(**where, dtype=dtype, trust_remote_code=trust_remote_code)
    hf = hf.eval()
    device = next(hf.parameters()).device
    worst, scale, same = 0.0, 0.0, True
    for out in outputs:
        if out.logits is None:
            raise ValueError("compare_with_transformers needs outputs generated with return_logits=True")
        ids = torch.tensor([out.prompt_token_ids + out.token_ids], device=device)
        n = len(out.prompt_token_ids)
        ref = hf(ids).logits[0, n - 1 : -1].float().cpu()
        worst = max(worst, (ref - out.logits).abs().max().item())
        scale = max(scale, ref.abs().max().item())
        same = same and ref.argmax(-1).tolist() == out.token_ids
    return Comparison(worst, scale, same, TOLERANCE.get(dtype, 5e-2))
