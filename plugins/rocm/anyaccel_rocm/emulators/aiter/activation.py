"""Gated activations (aiter/ops/activation.py, ROCm/aiter e404860): out [..., d] = act(x[..., :d]) *
x[..., d:], written into a caller-allocated `out`."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gated(out: torch.Tensor, input: torch.Tensor, act) -> None:
    d = input.shape[-1] // 2
    assert out.shape[-1] == d and out.shape[:-1] == input.shape[:-1], (
        "out must be [..., d] of input's [..., 2d]"
    )
    assert input.stride(-1) == 1, "input's last dim must be contiguous"
    x = input.float()
    out.copy_((act(x[..., :d]) * x[..., d:]).to(out.dtype))


def silu_and_mul(out, input, limit=0.0):
    if limit:
        raise NotImplementedError("emulated silu_and_mul: limit=0.0 only")
    _gated(out, input, F.silu)


def gelu_and_mul(out, input):
    _gated(out, input, F.gelu)


def gelu_tanh_and_mul(out, input):
    _gated(out, input, lambda x: F.gelu(x, approximate="tanh"))
