"""moe.experts on mx.gather_mm (dense weights) and mx.gather_qmm (int4_group weights).

Every (token, expert) pair is one row of a gathered matmul: hidden [T, 1, 1, H] against the experts named by
topk_ids [T, k] gives [T, k, 1, N], as MLX's own switch layers do. Pairs whose expert lives on another rank
(expert_map -> -1) read expert 0 with weight 0.

The contract's int4_group format is MLX's affine format already: 8 unsigned nibbles per 32-bit word along the
input dim, low bits first, one scale per group. MLX dequantizes as q * scale + bias, so the contract's
(q - zero) * scale is bias = -zero * scale (zero 8 when no zeros are given). Scales, biases and the
activations of quantized projections are float32 (see ops/quant.py: a half-precision bias loses the zero
point's exactness). Dense projections run in the hidden dtype on Metal; MLX's CPU build computes GatherMM in
float32 only, so there they run in float32.
"""

from __future__ import annotations

import mlx.core as mx

from .activation import gelu, silu
from .quant import affine_bias

INT4 = 4


def _project(
    x: mx.array, w: mx.array, ids: mx.array, scales: mx.array | None, zeros: mx.array | None, group_size: int
) -> mx.array:
    """x [T, k or 1, 1, K] against experts ids [T, k] of w [E, N, K] (or its int4 words) -> [T, k, 1, N]."""
    if scales is None:
        dtype = mx.float32 if mx.default_device() == mx.cpu else x.dtype
        return mx.gather_mm(x.astype(dtype), w.astype(dtype).swapaxes(-1, -2), rhs_indices=ids)
    scales = scales.astype(mx.float32)
    return mx.gather_qmm(
        x.astype(mx.float32),
        w.view(mx.uint32),
        scales,
        affine_bias(scales, zeros),
        rhs_indices=ids,
        transpose=True,
        group_size=group_size,
        bits=INT4,
    )


def experts(
    hidden: mx.array,
    w13: mx.array,
    w2: mx.array,
    topk_weights: mx.array,
    topk_ids: mx.array,
    activation: str = "silu",
    expert_map: mx.array | None = None,
    w13_scale: mx.array | None = None,
    w2_scale: mx.array | None = None,
    w13_zeros: mx.array | None = None,
    w2_zeros: mx.array | None = None,
    w13_bias: mx.array | None = None,
    w2_bias: mx.array | None = None,
    w13_global_scale: mx.array | None = None,
    w2_global_scale: mx.array | None = None,
) -> mx.array:
    """hidden [T, H] -> [T, H] in hidden's dtype; the gated activation and the weighted sum run in fp32.
    Expert biases and block-scaled (global-scaled) experts are not served here (the kernel's supports
    declines them); the torch.compile backend passes every argument, so they are refused by value."""
    if any(t is not None for t in (w13_bias, w2_bias, w13_global_scale, w2_global_scale)):
        raise ValueError("moe.experts (mlx): expert biases and global scales are not served by this kernel")
    ids, weights = topk_ids, topk_weights.astype(mx.float32)
    if expert_map is not None:
        local = expert_map[ids]
        weights = mx.where(local >= 0, weights, 0.0)
        ids = mx.where(local >= 0, local, 0)
    group_size = 0 if w13_scale is None else hidden.shape[-1] // w13_scale.shape[-1]
    gate_up = _project(hidden[:, None, None, :], w13, ids, w13_scale, w13_zeros, group_size)
    gate, up = mx.split(gate_up.astype(mx.float32), 2, axis=-1)
    act = (silu(gate) if activation == "silu" else gelu(gate)) * up
    group_size = 0 if w2_scale is None else act.shape[-1] // w2_scale.shape[-1]
    down = _project(act.astype(hidden.dtype), w2, ids, w2_scale, w2_zeros, group_size)  # [T, k, 1, H]
    return (down[:, :, 0, :].astype(mx.float32) * weights[..., None]).sum(axis=1).astype(hidden.dtype)
