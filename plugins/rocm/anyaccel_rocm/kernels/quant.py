"""quant.quantize_fp8 through AITER's HIP quantizers: per_tensor_quant_hip (dynamic, or static with a
given scale), per_token_quant_hip, per_group_quant_hip (1x128 groups). Rows whose K is not a multiple of
128 are zero-padded for the group quantizer (zeros change no group's amax)."""

from __future__ import annotations

import aiter
import torch.nn.functional as F

from . import warmup
from .warmup import attach

GROUP = 128


def quantize_fp8(x, fp8_dtype, granularity, scale=None):
    if granularity == "tensor":
        q, s = aiter.per_tensor_quant_hip(x, scale, quant_dtype=fp8_dtype)
        return q, s.float()
    if granularity == "token":
        return aiter.per_token_quant_hip(x, quant_dtype=fp8_dtype)
    k = x.shape[-1]
    padded = F.pad(x, (0, -k % GROUP)) if k % GROUP else x
    q, s = aiter.per_group_quant_hip(padded, quant_dtype=fp8_dtype, group_size=GROUP)
    return (q[..., :k].contiguous() if k % GROUP else q), s


attach(quantize_fp8, warmup.quantize_fp8)
