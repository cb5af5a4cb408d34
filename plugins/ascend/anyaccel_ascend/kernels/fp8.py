"""quant.fp8_gemm on Atlas A2/A3, which have no fp8 matrix units: only when the user asks for it
(ANYACCEL_ASCEND_FP8=dequantize), the fp8 weight is dequantized once at load (`prepare`: weight * its
tensor, channel or 128x128 block scales) and each call dequantizes the fp8 activations and runs a float32
matmul. The weights are kept in float32 (4 bytes each, twice a 16-bit checkpoint): rounding both operands to
16 bits loses more than the fp8 kernels' tolerance on rows whose products cancel.
Without that setting the kernel declines with the reason, so a plan shows why fp8
checkpoints are not served natively (and ANYACCEL_STRICT=1 turns the fallback into an error).

Not verified on the device: the fp8 -> float32 cast of the activations is plain torch on the NPU.
"""

from __future__ import annotations

import torch

from anyaccel.providers.reference.quant import expand_scale


def prepare(spec, weights: dict) -> dict:
    b, b_scale = weights["b"], weights["b_scale"]
    dense = (b.float() * expand_scale(b_scale, *b.shape)).contiguous()
    return weights | {"b": dense}


def dequantized_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
    x = a.float() * expand_scale(a_scale, *a.shape)
    out = torch.nn.functional.linear(x, b, None if bias is None else bias.float())
    return out.to(out_dtype)
