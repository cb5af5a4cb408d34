"""moe.topk (routing) and moe.experts (the fused expert computation)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_range, expect_tensor
from .common import preferred_dtype
from .microscaling import FORMATS

SCORINGS = ("softmax", "sigmoid")
ACTIVATIONS = ("silu", "gelu", "swiglu_oai")
PLACEMENTS = ("contiguous", "any")
MX_QUANT = ("mxfp8", "mxfp4", "nvfp4")  # block-scaled weights, formats of anyaccel.ops.microscaling
MOE_QUANT = ("none", "fp8_tensor", "fp8_block", "int4_group", *MX_QUANT)
# GPT-OSS's clamped SwiGLU (transformers' GptOssExperts: config.swiglu_alpha, config.swiglu_limit)
SWIGLU_OAI_ALPHA = 1.702
SWIGLU_OAI_LIMIT = 7.0


@dataclass(frozen=True)
class TopKSpec:
    dtype: torch.dtype = torch.float32  # router logits dtype
    num_experts: int = 64
    top_k: int = 8
    scoring: str = "softmax"
    grouped: bool = False  # n_group > 1 (DeepSeek-V3 style)
    has_bias: bool = False


@dataclass(frozen=True)
class MoESpec:
    dtype: torch.dtype = torch.float32  # hidden / output dtype
    num_experts: int = 64  # experts held by this rank (w13.shape[0])
    top_k: int = 8
    hidden_size: int = 2048
    intermediate_size: int = 768  # per expert, per tensor-parallel shard
    activation: str = "silu"
    quant: str = "none"
    group_size: int = 128  # int4_group only
    expert_parallel: bool = False  # an expert map is passed
    # Under expert parallelism, how the map places experts: "contiguous" (rank r holds one contiguous range
    # of global ids, the form FlashInfer's ep_rank/ep_size takes) or "any" (redundant or load-balanced
    # placements). Placement is static, so a kernel converts the map once and may reject "any".
    expert_placement: str = "contiguous"
    has_bias: bool = False  # w13_bias and w2_bias are passed (GPT-OSS)


def unserved_features(
    spec: MoESpec, activations: tuple[str, ...] = ("silu", "gelu"), bias: bool = False
) -> str | None:
    """For a kernel's `supports`: why it cannot serve `spec` when it computes only `activations` and, unless
    `bias`, no expert biases; None when it can (its weight formats it checks itself)."""
    if spec.activation not in activations:
        return f"activation {spec.activation!r}: computes {', '.join(activations)} only"
    if spec.has_bias and not bias:
        return "no expert biases (w13_bias, w2_bias)"
    return None


def topk(
    router_logits: torch.Tensor,
    top_k: int,
    scoring: str = "softmax",
    renormalize: bool = True,
    n_group: int = 1,
    topk_group: int = 1,
    correction_bias: torch.Tensor | None = None,
    routed_scaling_factor: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose top_k experts per token.

    router_logits: [T, E] (any float dtype; scored in fp32)
    scoring:       "softmax" (over all E) or "sigmoid" (each expert independently)
    Grouped selection (n_group > 1): experts form n_group equal groups; a group's score is the sum of its two
    best choice scores when correction_bias is given (DeepSeek-V3), else its best score (DeepSeek-V2); only
    experts of the topk_group best groups stay eligible.
    correction_bias: [E] float32 or None. It is added to the scores to CHOOSE experts only; the weights
    are the unbiased scores of the chosen experts.
    renormalize:   divide the k weights of a token by their sum
    routed_scaling_factor: finally multiplies the weights
    Returns (weights [T, top_k] float32, ids [T, top_k] int32). The order of the k pairs within a row is
    free (the reference sorts by descending choice score; the kit compares each row as a set of pairs).
    Grouped selection needs top_k <= topk_group * E / n_group.
    """
    raise NotImplementedError


def experts(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    activation: str = "silu",
    expert_map: torch.Tensor | None = None,
    w13_scale: torch.Tensor | None = None,
    w2_scale: torch.Tensor | None = None,
    w13_zeros: torch.Tensor | None = None,
    w2_zeros: torch.Tensor | None = None,
    w13_bias: torch.Tensor | None = None,
    w2_bias: torch.Tensor | None = None,
    w13_global_scale: torch.Tensor | None = None,
    w2_global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """out[t] = sum_j topk_weights[t, j] * E_{topk_ids[t, j]}(hidden[t]),
    E_e(x) = w2[e] @ glu(g, u) + w2_bias[e], where [g; u] = w13[e] @ x + w13_bias[e] (the first I rows of
    w13[e] are the gate projection, the next I the up; checkpoints that interleave them are de-interleaved
    by their loader).

    hidden:        [T, H] in spec.dtype
    w13:           [E, 2I, H]; w2: [E, H, I]  (E = experts held by this rank)
    topk_weights:  [T, k] float32; topk_ids: [T, k] int32 GLOBAL expert ids
    activation:    glu(g, u) = act(g) * u with act "silu" or "gelu" (erf); or "swiglu_oai" (GPT-OSS):
                   g' = min(g, 7.0), u' = clamp(u, -7.0, 7.0), glu = (u' + 1) * g' * sigmoid(1.702 * g')
    w13_bias, w2_bias: [E, 2I] and [E, H] in spec.dtype, or None (spec.has_bias says which)
    expert_map:    None, or [E_global] int32 mapping a global id to this rank's local index, -1 when the
                   expert lives elsewhere (expert parallelism): such (token, expert) pairs contribute 0 here
                   and the ranks' outputs are summed by the caller's all-reduce.
    Quantized weights (spec.quant):
      fp8_tensor: w13/w2 float8 e4m3; w13_scale/w2_scale [E] float32; weight = fp8.float() * scale[e]
      fp8_block:  w13_scale [E, ceil(2I/128), ceil(H/128)], w2_scale [E, ceil(H/128), ceil(I/128)] float32;
                  each 128x128 weight tile is multiplied by its scale (DeepSeek-V3's weight_scale_inv)
      int4_group: w13 int32 [E, 2I, H/8], w2 int32 [E, H, I/8]: 8 unsigned 4-bit values per int32 along the
                  input dim, value i of a word in bits 4i..4i+3; scales [E, N, K/group_size] in spec.dtype;
                  zeros (uint8, same shape as scales) or None for a symmetric zero point of 8;
                  weight = (q - zero) * scale
      mxfp8:      w13 float8_e4m3fn [E, 2I, H], w2 [E, H, I]; scales uint8 e8m0 [E, 2I, H/32], [E, H, I/32]
      mxfp4:      w13 uint8 [E, 2I, H/2], w2 uint8 [E, H, I/2] (two e2m1 per byte, element 2i in the low
                  nibble); scales uint8 e8m0 [E, 2I, H/32], [E, H, I/32]
      nvfp4:      packed as mxfp4; scales float8_e4m3fn [E, 2I, H/16], [E, H, I/16]; w13_global_scale and
                  w2_global_scale float32 [E] (real = e2m1 * scale * global[e], ModelOpt's weight_scale_2)
      The block formats (anyaccel.ops.microscaling) need H and I multiples of the block (32; 16 for nvfp4).
      Kernels may quantize activations on the fly (fp8 per token-group, mxfp8 or nvfp4 per block); the
      kit's tolerance allows it.
    Returns [T, H] in spec.dtype (a new tensor; tokens routed only to remote experts get zeros).
    """
    raise NotImplementedError


def _fake_topk(router_logits, top_k, *args, **kwargs):
    t = router_logits.shape[0]
    return (
        router_logits.new_empty(t, top_k, dtype=torch.float32),
        router_logits.new_empty(t, top_k, dtype=torch.int32),
    )


def _fake_experts(hidden, *args, **kwargs):
    return torch.empty_like(hidden)


def _check_topk_spec(spec: TopKSpec) -> None:
    op = "moe.topk"
    expect(op, spec.scoring in SCORINGS, f"scoring must be one of {SCORINGS}, got {spec.scoring!r}")
    expect(
        op, 0 < spec.top_k <= spec.num_experts, f"top_k must be in [1, {spec.num_experts}], got {spec.top_k}"
    )


def _check_experts_spec(spec: MoESpec) -> None:
    op = "moe.experts"
    expect(
        op,
        spec.activation in ACTIVATIONS,
        f"activation must be one of {ACTIVATIONS}, got {spec.activation!r}",
    )
    expect(op, spec.quant in MOE_QUANT, f"quant must be one of {MOE_QUANT}, got {spec.quant!r}")
    expect(
        op,
        spec.expert_placement in PLACEMENTS,
        f"expert_placement must be one of {PLACEMENTS}, got {spec.expert_placement!r}",
    )
    if spec.quant in MX_QUANT:
        block = FORMATS[spec.quant].block
        expect(
            op,
            spec.hidden_size % block == 0 and spec.intermediate_size % block == 0,
            f"{spec.quant} needs H and I multiples of {block}, got {spec.hidden_size} and "
            f"{spec.intermediate_size}",
        )
    if spec.quant == "int4_group":
        expect(
            op,
            spec.group_size in (32, 64, 128)
            and spec.hidden_size % spec.group_size == 0
            and spec.intermediate_size % spec.group_size == 0,
            f"int4 group_size must be 32/64/128 and divide H and I, got {spec.group_size}",
        )


def _check_topk(
    spec: TopKSpec,
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
) -> None:
    op = "moe.topk"
    expect_tensor(op, "router_logits", router_logits, shape=(None, spec.num_experts))
    expect(op, top_k == spec.top_k and scoring == spec.scoring, "top_k/scoring differ from the bound spec")
    expect(
        op,
        spec.num_experts % n_group == 0 and 0 < topk_group <= n_group,
        f"n_group must divide E and 0 < topk_group <= n_group, got {n_group}, {topk_group}",
    )
    expect(
        op,
        top_k <= topk_group * (spec.num_experts // n_group),
        f"top_k={top_k} exceeds the {topk_group} eligible groups of {spec.num_experts // n_group} experts",
    )
    if correction_bias is not None:
        expect_tensor(op, "correction_bias", correction_bias, shape=(spec.num_experts,))


def _check_experts(
    spec: MoESpec,
    hidden,
    w13,
    w2,
    topk_weights,
    topk_ids,
    activation="silu",
    expert_map=None,
    w13_scale=None,
    w2_scale=None,
    w13_zeros=None,
    w2_zeros=None,
    w13_bias=None,
    w2_bias=None,
    w13_global_scale=None,
    w2_global_scale=None,
) -> None:
    op = "moe.experts"
    e, h, i = spec.num_experts, spec.hidden_size, spec.intermediate_size
    expect_tensor(op, "hidden", hidden, shape=(None, h), dtype=spec.dtype)
    pack = {"int4_group": 8, "mxfp4": 2, "nvfp4": 2}.get(spec.quant, 1)
    expect_tensor(op, "w13", w13, shape=(e, 2 * i, h // pack))
    expect_tensor(op, "w2", w2, shape=(e, h, i // pack))
    if spec.quant in MX_QUANT:
        fmt = FORMATS[spec.quant]
        expect_tensor(op, "w13", w13, dtype=fmt.element_dtype)
        expect_tensor(op, "w2", w2, dtype=fmt.element_dtype)
        expect_tensor(op, "w13_scale", w13_scale, shape=(e, 2 * i, h // fmt.block), dtype=fmt.scale_dtype)
        expect_tensor(op, "w2_scale", w2_scale, shape=(e, h, i // fmt.block), dtype=fmt.scale_dtype)
        globals_given = w13_global_scale is not None and w2_global_scale is not None
        expect(op, globals_given == fmt.has_global, f"{spec.quant}: global scales given = {globals_given}")
        if fmt.has_global:
            expect_tensor(op, "w13_global_scale", w13_global_scale, shape=(e,), dtype=torch.float32)
            expect_tensor(op, "w2_global_scale", w2_global_scale, shape=(e,), dtype=torch.float32)
    expect(op, (w13_bias is not None) == spec.has_bias, "w13_bias presence differs from the spec")
    if spec.has_bias:
        expect_tensor(op, "w13_bias", w13_bias, shape=(e, 2 * i))
        expect_tensor(op, "w2_bias", w2_bias, shape=(e, h))
    expect_tensor(op, "topk_weights", topk_weights, shape=(hidden.shape[0], spec.top_k), dtype=torch.float32)
    expect_tensor(op, "topk_ids", topk_ids, shape=(hidden.shape[0], spec.top_k), dtype=torch.int32)
    expect(op, (expert_map is not None) == spec.expert_parallel, "expert_map presence differs from the spec")
    expect(
        op, (w13_scale is not None) == (spec.quant != "none"), f"quant={spec.quant} and w13_scale disagree"
    )
    _check_expert_values(spec, topk_ids, expert_map, w13_scale, w2_scale, w13_zeros, w2_zeros)


def _check_expert_values(spec: MoESpec, topk_ids, expert_map, w13_scale, w2_scale, w13_zeros, w2_zeros):
    """The ids' ranges and the scales of the fp8 and int4 modes (their shapes are what the kernels index)."""
    op, e, g = "moe.experts", spec.num_experts, spec.group_size
    h, i = spec.hidden_size, spec.intermediate_size
    if expert_map is not None:
        expect_tensor(op, "expert_map", expert_map, dims=1)
        expect_range(op, "expert_map", expert_map, -1, e, f"(this rank holds {e} experts)")
    held = e if expert_map is None else expert_map.numel()
    expect_range(op, "topk_ids", topk_ids, 0, held, f"({held} experts)")
    tiles = {n: -(-n // 128) for n in (2 * i, h, i)}
    scales = {
        "fp8_tensor": ((e,), (e,)),
        "fp8_block": ((e, tiles[2 * i], tiles[h]), (e, tiles[h], tiles[i])),
        "int4_group": ((e, 2 * i, h // g), (e, h, i // g)),
    }.get(spec.quant)
    if scales is None:
        return
    expect_tensor(op, "w13_scale", w13_scale, shape=scales[0])
    expect_tensor(op, "w2_scale", w2_scale, shape=scales[1])
    for name, zeros, shape in (("w13_zeros", w13_zeros, scales[0]), ("w2_zeros", w2_zeros, scales[1])):
        if zeros is not None:
            expect_tensor(op, name, zeros, shape=shape)


TOPK = OpDef(
    "moe.topk",
    topk,
    TopKSpec,
    _fake_topk,
    lambda p: TopKSpec(),
    check_spec=_check_topk_spec,
    check_args=_check_topk,
)
EXPERTS = OpDef(
    "moe.experts",
    experts,
    MoESpec,
    _fake_experts,
    lambda p: MoESpec(dtype=preferred_dtype(p)),
    check_spec=_check_experts_spec,
    check_args=_check_experts,
    weights=(
        "w13",
        "w2",
        "w13_scale",
        "w2_scale",
        "w13_zeros",
        "w2_zeros",
        "w13_bias",
        "w2_bias",
        "w13_global_scale",
        "w2_global_scale",
    ),
)
