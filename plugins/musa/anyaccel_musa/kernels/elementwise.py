"""Norms, rope and SwiGLU through torch_musa's fused aten ops (reached through anyaccel_musa.musa_ops).

norm.rms_norm        _fused_rmsnorm_forward(x, [H], eps, weight) -> (y, invvar): y. The weight must be in
                     x's dtype (RMSNorm.cpp checks it); another dtype is converted once per weight tensor.
activation.silu_and_mul  _fused_swiglu_forward(x): silu of the first half times the second (arch 22+).
rope.apply           _fused_rope_forward(x, freq_cis, rotary_interleaved=False, batch_first=False): x as
                     [T, 1, H, D] (one "sequence" position per token, batch 1), freq_cis [T, rotary_dim] the
                     rotation ANGLES of each token in the rotate-half layout (the angle of channel i repeated
                     at i + rotary_dim/2). The angles come from our cos/sin cache as atan2(sin, cos), once per
                     cache tensor, kept in float32, and are gathered per call by position.
                     Not verified on the device: whether muDNN takes float32 angles with 16-bit inputs.
"""

from __future__ import annotations

import torch

import anyaccel_musa.musa_ops as musa_ops
from anyaccel.ops.rope import RopeSpec
from anyaccel.planning import Converted
from anyaccel.platforms.base import Platform


def rms_norm(spec, platform: Platform):
    weight_of = Converted(lambda w: w.to(spec.dtype))

    def fused_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        y, _ = musa_ops.fused_rmsnorm_forward(x, [x.shape[-1]], eps, weight_of(weight))
        return y

    return fused_rms_norm


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    return musa_ops.fused_swiglu_forward(x)


def _angles(cos_sin_cache: torch.Tensor) -> torch.Tensor:
    """[max_pos, r] (cos | sin halves) -> [max_pos, r] float32 angles, each half's angle repeated."""
    cos, sin = cos_sin_cache.float().chunk(2, dim=-1)
    theta = torch.atan2(sin, cos)
    return torch.cat((theta, theta), dim=-1).contiguous()


def rope(spec: RopeSpec, platform: Platform):
    angles_of = Converted(_angles)

    def fused_rope(q, k, positions, cos_sin_cache, is_neox):
        freqs = angles_of(cos_sin_cache)[positions]
        q_out = musa_ops.fused_rope_forward(q.unsqueeze(1), freqs, False, False)
        k_out = musa_ops.fused_rope_forward(k.unsqueeze(1), freqs, False, False)
        return q_out.squeeze(1), k_out.squeeze(1)

    return fused_rope
