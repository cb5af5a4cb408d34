"""Emulator of `testchip_runtime`, the (made-up) vendor library of the testchip family, in plain torch.

It stands for what a real plugin ships for torch_npu, aiter or flashinfer: the documented semantics of each
function the plugin calls, and the vendor's argument checks, so that an emulated run proves the plugin's glue.
It is installed as `testchip_runtime` only on an emulated testchip platform (ANYACCEL_EMULATE=testchip:tc_2).

The documented API it emulates:

    fused_rms_norm(input, gamma, epsilon, *, out) -> None
        input:  [tokens, hidden], float32 or bfloat16, rows contiguous (row stride may exceed hidden)
        gamma:  [hidden], input's dtype
        out:    [tokens, hidden] contiguous, input's dtype; written in place
        hidden: a multiple of 8, at most 8192
        out = (input_f32 * rsqrt(mean(input_f32 ** 2, -1) + epsilon)).to(dtype) * gamma
    Every violation raises TestchipError (a RuntimeError) naming the argument; unknown keywords raise
    TypeError, as any Python function does.
"""

from __future__ import annotations

import torch

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16)
MAX_HIDDEN = 8192


class TestchipError(RuntimeError):
    """What testchip_runtime raises for arguments it does not accept."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise TestchipError(f"testchip_runtime.fused_rms_norm: {message}")


def fused_rms_norm(input: torch.Tensor, gamma: torch.Tensor, epsilon: float, *, out: torch.Tensor) -> None:
    _require(input.dim() == 2, f"input must be 2-D [tokens, hidden], got shape {tuple(input.shape)}")
    tokens, hidden = input.shape
    _require(input.dtype in SUPPORTED_DTYPES, f"input dtype {input.dtype} is not float32 or bfloat16")
    _require(hidden % 8 == 0 and hidden <= MAX_HIDDEN, f"hidden {hidden}: a multiple of 8 <= {MAX_HIDDEN}")
    _require(input.stride(-1) == 1, "input rows must be contiguous")
    _require(gamma.shape == (hidden,) and gamma.dtype == input.dtype, "gamma: [hidden] in input's dtype")
    _require(
        out.shape == input.shape and out.dtype == input.dtype and out.is_contiguous(),
        "out must be a contiguous tensor shaped and typed like input",
    )
    _require(epsilon > 0, f"epsilon must be positive, got {epsilon}")
    x = input.float()
    normed = (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + epsilon)).to(input.dtype)
    out.copy_(normed * gamma)
