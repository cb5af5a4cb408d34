"""aiter.fused_moe.fused_moe (aiter/fused_moe.py, ROCm/aiter e404860) in plain torch.

The weights are read as AITER's kernels read them: w1 [E, 2I, H] (gate rows, then up) and w2 [E, H, I]
pre-shuffled by shuffle_weight(w, (16, 16)), so this emulator un-shuffles them to compute: weights that
were not shuffled give wrong results, as on the device. Activations are quantized on the fly for fp8
(per token for per_Tensor, per 1x128 group for per_128x128) in AITER's fp8 for the gfx. With expert_mask
[E_global] (1 = held here), a global id's local index is the number of held experts before it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._device import fp8
from .enums import ActivationType, QuantType
from .ops.shuffle import unshuffle_weight

_BLOCK = 128


def _quant_rows(x: torch.Tensor, group: int | None) -> torch.Tensor:
    """x [T, K] float32 -> dequantized fp8 values (dynamic scales per row or per 1x`group`)."""
    dtype = fp8()
    top = torch.finfo(dtype).max
    t, k = x.shape
    g = group or k
    pad = (-k) % g
    xp = F.pad(x, (0, pad)).view(t, -1, g)
    scale = xp.abs().amax(-1, keepdim=True).clamp_min(1e-12) / top
    q = (xp / scale).clamp(-top, top).to(dtype).float() * scale
    return q.view(t, -1)[:, :k]


def _weights(w: torch.Tensor, scale: torch.Tensor | None, quant: QuantType, e: int) -> torch.Tensor:
    """Expert e's weight [N, K] in float32, dequantized."""
    x = w[e].float()
    if quant == QuantType.No:
        return x
    if quant == QuantType.per_Tensor:
        return x * scale.reshape(w.shape[0], -1)[e, 0].float()  # type: ignore[union-attr]
    s = scale[e].float()  # type: ignore[index]  # [N/128, K/128]
    full = s.repeat_interleave(_BLOCK, 0).repeat_interleave(_BLOCK, 1)[: x.shape[0], : x.shape[1]]
    return x * full


def fused_moe(
    hidden_states,
    w1,
    w2,
    topk_weight,
    topk_ids,
    expert_mask=None,
    activation=ActivationType.Silu,
    quant_type=QuantType.No,
    doweight_stage1=False,
    w1_scale=None,
    w2_scale=None,
    a1_scale=None,
    a2_scale=None,
    block_size_M=None,
    num_local_tokens=None,
    moe_sorting_dispatch_policy=0,
    dtype=None,
    hidden_pad=0,
    intermediate_pad=0,
    bias1=None,
    bias2=None,
    splitk=0,
    swiglu_limit=None,
    beta=None,
    linear_beta=None,
    gate_mode="separated",
    shared_w1=None,
    shared_w2=None,
    shared_w1_scale=None,
    shared_w2_scale=None,
    shared_expert_id=-1,
    stage2_scatter=None,
):
    """out [T, H] = sum_j topk_weight[t, j] * w2[e] @ act(gate) * up, e = local expert of topk_ids[t, j]."""
    unsupported = (
        a1_scale,
        a2_scale,
        bias1,
        bias2,
        swiglu_limit,
        beta,
        linear_beta,
        shared_w1,
        stage2_scatter,
    )
    if doweight_stage1 or any(x is not None for x in unsupported) or hidden_pad or intermediate_pad:
        raise NotImplementedError(
            "emulated fused_moe: dynamic activation scales, no bias/padding/shared experts"
        )
    t, h = hidden_states.shape
    e_local, two_i, h1 = w1.shape
    assert h1 == h and w2.shape[0] == e_local and w2.shape[1] == h and 2 * w2.shape[2] == two_i, (
        f"w1 {list(w1.shape)} / w2 {list(w2.shape)} do not match hidden {h}"
    )
    assert topk_ids.dtype == torch.int32 and topk_weight.shape == topk_ids.shape, "topk_ids int32 [T, k]"
    assert hidden_states.dtype in (torch.bfloat16, torch.float16), f"unsupported dtype {hidden_states.dtype}"
    quant = QuantType(int(quant_type))
    act = {ActivationType.Silu: F.silu, ActivationType.Gelu: F.gelu}[ActivationType(int(activation))]
    if quant == QuantType.No:
        assert w1.dtype == hidden_states.dtype, "unquantized weights must match hidden_states' dtype"
    elif quant in (QuantType.per_Tensor, QuantType.per_128x128):
        assert w1.dtype == fp8() and w2.dtype == fp8(), f"fp8 weights must be {fp8()} on this gfx"
        assert w1_scale is not None and w2_scale is not None, "fp8 weights need w1_scale and w2_scale"
        if quant == QuantType.per_128x128:
            want = (e_local, -(-two_i // _BLOCK), -(-h // _BLOCK))
            assert tuple(w1_scale.shape) == want, f"w1_scale must be {list(want)}"
            assert h % _BLOCK == 0 and two_i % (2 * _BLOCK) == 0, "per_128x128 needs whole 128 blocks"
    else:
        raise NotImplementedError(f"emulated fused_moe: quant_type {quant.name}")
    w1u, w2u = unshuffle_weight(w1), unshuffle_weight(w2)
    group = _BLOCK if quant == QuantType.per_128x128 else None
    ids = topk_ids.long()
    if expert_mask is not None:
        assert expert_mask.dtype == torch.int32 and ids.max() < expert_mask.numel(), "expert_mask [E_global]"
        local = torch.cumsum(expert_mask.long(), 0) - 1
        assert int(expert_mask.sum()) == e_local, "expert_mask must mark exactly the held experts"
        ids = torch.where(expert_mask[ids] > 0, local[ids], torch.full_like(ids, -1))
    out_dtype = dtype or hidden_states.dtype
    out = torch.zeros(t, h, dtype=torch.float32)
    x_all = hidden_states.float()
    for e in range(e_local):
        tokens, slot = (ids == e).nonzero(as_tuple=True)
        if tokens.numel() == 0:
            continue
        x = x_all[tokens]
        if quant != QuantType.No:
            x = _quant_rows(x, group)
        gate_up = x @ _weights(w1u, w1_scale, quant, e).T
        inter = (act(gate_up[:, : two_i // 2]) * gate_up[:, two_i // 2 :]).to(hidden_states.dtype).float()
        if quant != QuantType.No:
            inter = _quant_rows(inter, group)
        y = inter @ _weights(w2u, w2_scale, quant, e).T
        out.index_add_(0, tokens, y * topk_weight[tokens, slot].float().unsqueeze(-1))
    return out.to(out_dtype)
