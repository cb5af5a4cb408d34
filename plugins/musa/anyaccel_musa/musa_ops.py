"""torch_musa's fused operators, reached through this one module: torch_musa registers them as aten ops
(`torch.ops.aten._fused_rmsnorm_forward`, `_fused_swiglu_forward`, `_fused_rope_forward`) that only a
MUSA tensor dispatches to. On an emulated musa platform this module is replaced by
anyaccel_musa.emulators.musa_ops, so the kernels calling it run on the host.

Schemas (torch_musa torch_patches/aten_src_ATen_native_native_functions.yaml.patch):
    _fused_rmsnorm_forward(Tensor input, SymInt[] normalized_shape, float eps, Tensor? weight=None)
        -> (Tensor output, Tensor invvar)
    _fused_swiglu_forward(Tensor input) -> Tensor
    _fused_rope_forward(Tensor input, Tensor freq_cis, bool rotary_interleaved, bool batch_first,
        bool multi_latent_attention=False) -> Tensor
"""

from __future__ import annotations

import torch


def fused_rmsnorm_forward(
    x: torch.Tensor, normalized_shape: list[int], eps: float, weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.ops.aten._fused_rmsnorm_forward(x, normalized_shape, eps, weight)


def fused_swiglu_forward(x: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten._fused_swiglu_forward(x)


def fused_rope_forward(
    x: torch.Tensor,
    freq_cis: torch.Tensor,
    rotary_interleaved: bool,
    batch_first: bool,
    multi_latent_attention: bool = False,
) -> torch.Tensor:
    op = torch.ops.aten._fused_rope_forward
    return op(x, freq_cis, rotary_interleaved, batch_first, multi_latent_attention)
