"""Norms, rope and SwiGLU through torch_npu.

norm.rms_norm       npu_rms_norm(x, w, eps) -> (y, rstd): y. torch_npu reads 2-8 dims: x is viewed as rows.
norm.add_rms_norm   npu_add_rms_norm(x, residual, w, eps) -> (y, rstd, x + residual): both written back
                    into the caller's buffers (the contract is in place).
rope.apply          A2/A3: npu_mrope(positions, q2d, k2d, cos_sin_cache, head_size, rotary_mode="half" for
                    NeoX or "interleave" for GPT-J) in rope mode (no sections); the cache in q's dtype,
                    converted once per cache tensor. 310P: npu_apply_rotary_pos_emb on copies of q and k
                    (it updates in place, the contract returns new tensors) with cos/sin gathered per token
                    and widened to the head dim ("half" mode: the rotated halves share them).
activation.silu_and_mul  npu_swiglu(x, dim=-1): silu of the first half times the second.
activation.gelu_and_mul  npu_geglu(x, dim=-1, approximate=0 ("none", erf) or 1 ("tanh"), activate_left=True)
                    -> (gelu(first half) * second half, gelu(first half)): the first output. activate_left
                    True puts the GELU on the first half, the contract's gate (the default False gates the
                    second half: hicann/ops-nn @ 0c8fd4c activation/ge_glu_v2/docs/aclnnGeGluV3.md).
"""

from __future__ import annotations

import torch
import torch_npu

from anyaccel.ops.rope import RopeSpec
from anyaccel.platforms.base import Platform

from .planned import Converted


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1])
    y, _ = torch_npu.npu_rms_norm(rows, weight, eps)
    return y.view(x.shape)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    y, _, added = torch_npu.npu_add_rms_norm(x, residual, weight, eps)
    residual.copy_(added)
    x.copy_(y)


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    return torch_npu.npu_swiglu(x, dim=-1)


GELU_APPROXIMATE = {"none": 0, "tanh": 1}  # npu_geglu's `approximate` index for the contract's names


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    out, _ = torch_npu.npu_geglu(x, dim=-1, approximate=GELU_APPROXIMATE[approximate], activate_left=True)
    return out


def mrope(spec: RopeSpec, platform: Platform):
    cache_of = Converted(lambda c: c.to(spec.dtype).contiguous())
    mode = "half" if spec.is_neox else "interleave"

    def rope(q, k, positions, cos_sin_cache, is_neox):
        tokens = q.shape[0]
        q_out, k_out = torch_npu.npu_mrope(
            positions,
            q.reshape(tokens, -1),
            k.reshape(tokens, -1),
            cache_of(cos_sin_cache),
            spec.head_dim,
            mrope_section=[0, 0, 0],
            rotary_mode=mode,
        )
        return q_out.view(q.shape), k_out.view(k.shape)

    return rope


def apply_rotary(spec: RopeSpec, platform: Platform):
    def rope(q, k, positions, cos_sin_cache, is_neox):
        tokens = q.shape[0]
        cos, sin = cos_sin_cache[positions.long()].chunk(2, dim=-1)
        cos = torch.cat((cos, cos), dim=-1).to(q.dtype).view(tokens, 1, 1, -1)
        sin = torch.cat((sin, sin), dim=-1).to(q.dtype).view(tokens, 1, 1, -1)
        q4 = q.reshape(tokens, 1, q.shape[1], q.shape[2]).clone()
        k4 = k.reshape(tokens, 1, k.shape[1], k.shape[2]).clone()
        torch_npu.npu_apply_rotary_pos_emb(q4, k4, cos, sin, layout="BSND", rotary_mode="half")
        return q4.view(q.shape), k4.view(k.shape)

    return rope
