"""Emulator of flashinfer.activation silu_and_mul / gelu_and_mul / gelu_tanh_and_mul (flashinfer-python
0.7.4): input [..., 2d] fp16/bf16 with an even last dim, out [..., d]; act(input[..., :d]) * input[..., d:]
in fp32, rounded once."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import require


def _act_and_mul(input: torch.Tensor, out: torch.Tensor | None, act) -> torch.Tensor:
    if input.shape[-1] % 2 != 0:
        raise ValueError("The last dimension must be even (2 * hidden_size).")
    require(input.dtype in (torch.float16, torch.bfloat16), f"unsupported dtype {input.dtype}")
    require(input.stride(-1) == 1, "input must be contiguous in its last dim")
    d = input.shape[-1] // 2
    x = input.float()
    result = (act(x[..., :d]) * x[..., d:]).to(input.dtype)
    if out is None:
        return result
    assert out.shape == result.shape, f"{tuple(out.shape)} != {tuple(result.shape)}"
    out.copy_(result)
    return out


def silu_and_mul(input: torch.Tensor, out: torch.Tensor | None = None, enable_pdl: bool | None = None):
    return _act_and_mul(input, out, F.silu)


def gelu_and_mul(input: torch.Tensor, out: torch.Tensor | None = None, enable_pdl: bool | None = None):
    return _act_and_mul(input, out, F.gelu)


def gelu_tanh_and_mul(input: torch.Tensor, out: torch.Tensor | None = None, enable_pdl: bool | None = None):
    return _act_and_mul(input, out, lambda x: F.gelu(x, approximate="tanh"))
