"""Emulator of torch_musa's fused aten ops (MooreThreads/torch_musa @ 8b583b3), standing in for
anyaccel_musa.musa_ops on an emulated musa platform.

_fused_rmsnorm_forward (RMSNorm.cpp): input float32/float16/bfloat16; weight, if given, in the input's dtype
    and of normalized_shape; returns (output in the input's dtype, invvar float32 over the leading dims).
_fused_swiglu_forward (SwiGlu.cpp): float32/float16/bfloat16, even last dim; silu(first half) * second half.
    torch_musa tests it from arch 22 only, which the emulator takes as its gate.
_fused_rope_forward (RoPE.cpp, test_rope_apply.py): float32/float16/bfloat16 input; freq_cis holds angles
    [S, rot_dim] (or [S, 1, 1, rot_dim]); batch_first=False reads the input as [S, B, H, D]; the first rot_dim
    channels are rotated in the rotate-half form, the rest pass through. Arch 22 and newer (the tests' gate).
    rotary_interleaved=True and multi_latent_attention=True are not emulated (their semantics are not
    documented beyond the test's reference).
"""

from __future__ import annotations

import torch

from ._arch import arch, require

FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def fused_rmsnorm_forward(
    x: torch.Tensor, normalized_shape: list[int], eps: float, weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    require(
        x.dtype in FLOATS,
        f"Dtype of input tensor of RMSNorm only supports Float32, Half and BFloat16, but now is {x.dtype}",
    )
    shape = tuple(normalized_shape)
    require(tuple(x.shape[-len(shape) :]) == shape, f"normalized_shape {shape} does not end {tuple(x.shape)}")
    if weight is not None:
        require(
            weight.dtype == x.dtype,
            f"DTypes of input/weight tensors of FusedRMSNormForwardOut must be the same, but now input in "
            f"{x.dtype}, weight in {weight.dtype}",
        )
        require(tuple(weight.shape) == shape, f"weight of shape {tuple(weight.shape)}, expected {shape}")
    rows = x.float().reshape(*x.shape[: -len(shape)], -1)
    invvar = torch.rsqrt(rows.pow(2).mean(-1) + eps)
    y = (rows * invvar.unsqueeze(-1)).reshape(x.shape)
    if weight is not None:
        y = y * weight.float()
    return y.to(x.dtype), invvar


def fused_swiglu_forward(x: torch.Tensor) -> torch.Tensor:
    require(arch() >= 22, f"SwiGLU: no kernel for arch {arch()} (torch_musa tests it from arch 22)")
    require(x.dtype in FLOATS, "SwiGLu only supports for float32/float16/bfloat16")
    require(x.shape[-1] % 2 == 0, f"SwiGLU halves the last dim, got {x.shape[-1]}")
    gate, up = x.float().chunk(2, dim=-1)
    return (torch.nn.functional.silu(gate) * up).to(x.dtype)


def _rotate_half(t: torch.Tensor) -> torch.Tensor:
    a, b = t.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def fused_rope_forward(
    x: torch.Tensor,
    freq_cis: torch.Tensor,
    rotary_interleaved: bool,
    batch_first: bool,
    multi_latent_attention: bool = False,
) -> torch.Tensor:
    require(arch() >= 22, f"Rope: no kernel for arch {arch()} (torch_musa tests it from arch 22)")
    require(x.dtype in FLOATS, f"Dtype of input tensor only support Float32 and Float16/Bfloat16: {x.dtype}")
    if rotary_interleaved or multi_latent_attention:
        raise NotImplementedError("_fused_rope_forward: rotary_interleaved / multi_latent_attention")
    require(x.dim() == 4, f"rope reads a 4-d input (SBHD or BSHD), got {tuple(x.shape)}")
    seq = x.shape[1] if batch_first else x.shape[0]
    freqs = freq_cis.reshape(freq_cis.shape[0], freq_cis.shape[-1])
    rot = freqs.shape[-1]
    require(freqs.shape[0] == seq, f"freq_cis has {freqs.shape[0]} rows for a sequence of {seq}")
    require(rot <= x.shape[-1] and rot % 2 == 0, f"rot_dim {rot} for head dim {x.shape[-1]}")
    angles = freqs.float().view(1, seq, 1, rot) if batch_first else freqs.float().view(seq, 1, 1, rot)
    t, rest = x[..., :rot].float(), x[..., rot:].float()
    t = t * torch.cos(angles) + _rotate_half(t) * torch.sin(angles)
    return torch.cat((t, rest), dim=-1).to(x.dtype)
