"""norm.rms_norm, norm.add_rms_norm, rope.apply and the gated activations through vllm-xpu-kernels' _C ops
(the signatures of csrc/torch_bindings.cpp).

rms_norm(out, x, w, eps) and the activations (out, x) write into an output made here; fused_add_rms_norm
(x, residual, w, eps) is the contract's in-place add-then-normalise. rotary_embedding(positions, q, k,
head_size, cos_sin_cache, is_neox) rotates q and k IN PLACE with a cache in q's dtype, so the kernel
rotates copies (the contract returns new tensors) and converts the float32 cache once per cache tensor.
"""

from __future__ import annotations

import torch

from anyaccel.planning import Converted
from anyaccel.platforms.base import Platform

from .. import vendor_ops as ops


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    out = torch.empty_like(x)
    ops.C.rms_norm(out, x, weight, eps)
    return out


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    ops.C.fused_add_rms_norm(x, residual, weight, eps)


def _gated(fn, x: torch.Tensor) -> torch.Tensor:
    out = x.new_empty(*x.shape[:-1], x.shape[-1] // 2)
    fn(out, x)
    return out


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    return _gated(ops.C.silu_and_mul, x)


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    return _gated(ops.C.gelu_tanh_and_mul if approximate == "tanh" else ops.C.gelu_and_mul, x)


def rope(spec, platform: Platform):
    cache_of = Converted(lambda cache: cache.to(spec.dtype))

    def rotary_embedding(q, k, positions, cos_sin_cache, is_neox):
        q, k = q.clone(), k.clone()
        ops.C.rotary_embedding(positions, q, k, spec.head_dim, cache_of(cos_sin_cache), is_neox)
        return q, k

    return rotary_embedding
