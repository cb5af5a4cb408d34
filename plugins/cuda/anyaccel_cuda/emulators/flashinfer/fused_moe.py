"""Emulator of flashinfer.fused_moe (flashinfer-python 0.7.4): fused_topk_deepseek and cutlass_fused_moe.

fused_topk_deepseek (fused_routing_dsv3.py): sigmoid scores plus bias choose the experts (group score =
sum of a group's two best biased scores when n_group > 1); the weights are the chosen unbiased sigmoid
scores divided by their sum, times routed_scaling_factor. Limits from its validator and docstring: topk <= 8,
n_group <= 32, E % n_group == 0, topk_group <= n_group, topk_group * n_group >= topk; with n_group > 1:
E / n_group <= 32 and (E / n_group) * topk_group <= 128; with n_group == 1: E <= 384. Capabilities:
@supported_compute_capability([89, 90, 100, 103, 107, 120, 121]).

cutlass_fused_moe (core.py), the unquantized path: fc1_expert_weights [E_local, 2I, H] with the up
projection first and the gate second ([w3; w1]), fc2 [E_local, H, I]; out[t] = sum_j scale[t, j] *
fc2_e(act(gate) * up), the activation's product rounded to the input dtype. Experts of this rank are
ep_rank * E_local ... (ep_rank + 1) * E_local - 1; others contribute nothing. Quantized modes are not
emulated. sm_110 fails on the device (FlashInfer #3134) and raises here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import arch
from ..errors import not_emulated, require

ROUTING_CAPABILITIES = (89, 90, 100, 103, 107, 120, 121)
CUTLASS_MOE_BUILDS = (89, 90, 100, 103, 107, 120, 121)  # 110 builds, but fails (FlashInfer #3134)


SWIGLU, GEGLU = 3, 4


def fused_topk_deepseek(
    scores: torch.Tensor,
    bias: torch.Tensor,
    n_group: int,
    topk_group: int,
    topk: int,
    routed_scaling_factor: float,
    topk_values: torch.Tensor,
    topk_indices: torch.Tensor,
    launch_with_pdl: bool = True,
    routing_replay_out: torch.Tensor | None = None,
    *,
    backend: str = "default",
) -> None:
    cc = arch.sm_version()
    if cc not in ROUTING_CAPABILITIES:
        raise RuntimeError(f"fused_topk_deepseek is not supported on compute capability {cc}")
    not_emulated(
        "fused_topk_deepseek", routing_replay_out=(routing_replay_out, None), backend=(backend, "default")
    )
    require(
        scores.dim() == 2 and scores.is_contiguous(), "scores must be a contiguous [num_tokens, num_experts]"
    )
    tokens, experts = scores.shape
    require(
        scores.dtype in (torch.float32, torch.float16, torch.bfloat16), f"unsupported dtype {scores.dtype}"
    )
    require(bias.shape == (experts,) and bias.dtype == scores.dtype, "bias: [num_experts] in scores' dtype")
    require(
        topk_values.shape == (tokens, topk) and topk_values.dtype == scores.dtype, "topk_values shape/dtype"
    )
    require(topk_indices.shape == (tokens, topk) and topk_indices.dtype == torch.int32, "topk_indices int32")
    require(topk_values.is_contiguous() and topk_indices.is_contiguous(), "outputs must be contiguous")
    require(1 <= topk <= 8 and topk <= experts, f"topk must be in [1, 8], got {topk}")
    require(
        1 <= n_group <= 32 and experts % n_group == 0, f"n_group {n_group}: <= 32 and dividing num_experts"
    )
    require(1 <= topk_group <= n_group and topk_group * n_group >= topk, "invalid topk_group")
    if n_group > 1:
        per = experts // n_group
        require(
            per <= 32 and per * topk_group <= 128, f"{per} experts per group x {topk_group} groups exceed 128"
        )
    else:
        require(experts <= 384, f"num_experts {experts} > 384 with n_group == 1")
    sig = torch.sigmoid(scores.float())
    choice = sig + bias.float()
    if n_group > 1:
        groups = choice.view(tokens, n_group, -1)
        group_score = groups.topk(2, dim=-1).values.sum(-1)
        keep = torch.zeros_like(group_score, dtype=torch.bool)
        keep.scatter_(1, group_score.topk(topk_group, dim=-1).indices, True)
        choice = groups.masked_fill(~keep.unsqueeze(-1), float("-inf")).view(tokens, experts)
    ids = choice.topk(topk, dim=-1).indices
    weights = sig.gather(1, ids)
    weights = weights / weights.sum(-1, keepdim=True) * routed_scaling_factor
    topk_values.copy_(weights)
    topk_indices.copy_(ids.to(torch.int32))


def cutlass_fused_moe(
    input: torch.Tensor,
    token_selected_experts: torch.Tensor,
    token_final_scales: torch.Tensor,
    fc1_expert_weights: torch.Tensor,
    fc2_expert_weights: torch.Tensor,
    output_dtype: torch.dtype,
    quant_scales: list[torch.Tensor],
    fc1_expert_biases: torch.Tensor | None = None,
    fc2_expert_biases: torch.Tensor | None = None,
    input_sf: torch.Tensor | None = None,
    swiglu_alpha: torch.Tensor | None = None,
    swiglu_beta: torch.Tensor | None = None,
    swiglu_limit: torch.Tensor | None = None,
    tp_size: int = 1,
    tp_rank: int = 0,
    ep_size: int = 1,
    ep_rank: int = 0,
    cluster_size: int = 1,
    cluster_rank: int = 0,
    output: torch.Tensor | None = None,
    enable_alltoall: bool = False,
    use_deepseek_fp8_block_scale: bool = False,
    use_w4_group_scaling: bool = False,
    use_mxfp8_act_scaling: bool = False,
    min_latency_mode: bool = False,
    use_packed_weights: bool = False,
    use_wfp4afp8_humming: bool = False,
    tune_max_num_tokens: int = 8192,
    enable_pdl: bool | None = None,
    activation_type: int = SWIGLU,
) -> torch.Tensor:
    api = "cutlass_fused_moe"
    cc = arch.sm_version()
    if cc == 110:
        raise RuntimeError(f"{api}: the CUTLASS MoE kernels fail on sm_110 (FlashInfer #3134)")
    if cc not in CUTLASS_MOE_BUILDS:
        raise NotImplementedError(f"{api}: no CUTLASS fused MoE module for compute capability {cc}")
    if min_latency_mode:
        raise NotImplementedError("min latency mode not yet implemented for Blackwell.")
    not_emulated(
        api, fc1_expert_biases=(fc1_expert_biases, None), fc2_expert_biases=(fc2_expert_biases, None)
    )
    not_emulated(
        api, input_sf=(input_sf, None), swiglu_alpha=(swiglu_alpha, None), swiglu_beta=(swiglu_beta, None)
    )
    not_emulated(api, swiglu_limit=(swiglu_limit, None), tp_size=(tp_size, 1), cluster_size=(cluster_size, 1))
    not_emulated(
        api, enable_alltoall=(enable_alltoall, False), fp8_block=(use_deepseek_fp8_block_scale, False)
    )
    not_emulated(api, w4=(use_w4_group_scaling, False), mxfp8=(use_mxfp8_act_scaling, False))
    not_emulated(api, packed=(use_packed_weights, False), humming=(use_wfp4afp8_humming, False))
    require(
        activation_type in (SWIGLU, GEGLU),
        f"activation_type {activation_type} is not emulated",
        NotImplementedError,
    )
    require(input.dim() == 2 and input.is_contiguous(), "input: contiguous [num_tokens, hidden_size]")
    require(
        input.dtype in (torch.float16, torch.bfloat16, torch.float32),
        f"unsupported input dtype {input.dtype}",
    )
    require(
        fc1_expert_weights.dtype == input.dtype == fc2_expert_weights.dtype,
        "weights must be in input's dtype",
    )
    require(not quant_scales, "quant_scales must be empty for unquantized weights")
    experts, two_i, hidden = fc1_expert_weights.shape
    inter = two_i // 2
    require(
        input.shape[1] == hidden and fc2_expert_weights.shape == (experts, hidden, inter), "weight shapes"
    )
    require(fc1_expert_weights.is_contiguous() and fc2_expert_weights.is_contiguous(), "weights contiguous")
    tokens, k = token_selected_experts.shape
    require(token_selected_experts.dtype == torch.int32 and tokens == input.shape[0], "experts: [T, k] int32")
    require(token_final_scales.shape == (tokens, k) and token_final_scales.dtype == torch.float32, "scales")
    require(0 <= ep_rank < ep_size, "ep_rank must be in [0, ep_size)")
    act = F.silu if activation_type == SWIGLU else F.gelu
    result = torch.zeros(tokens, hidden, dtype=torch.float32)
    local = token_selected_experts.long() - ep_rank * experts
    x = input.float()
    for e in range(experts):
        rows, slots = (local == e).nonzero(as_tuple=True)
        if rows.numel() == 0:
            continue
        fc1 = x[rows] @ fc1_expert_weights[e].float().T
        up, gate = fc1[:, :inter], fc1[:, inter:]
        hidden_e = (act(gate) * up).to(input.dtype).float()
        out_e = hidden_e @ fc2_expert_weights[e].float().T
        result.index_add_(0, rows, out_e * token_final_scales[rows, slots].unsqueeze(1))
    if output is not None:
        require(output.shape == (tokens, hidden) and output.dtype == output_dtype, "output shape/dtype")
        output.copy_(result)
        return output
    return result.to(output_dtype)


TRTLLM_MOE_MAJORS = (10,)  # gen_trtllm_gen_fused_moe_sm100_module: the sm_100 family only
FP8_MAX = 448.0


def _quantize_blocks(x: torch.Tensor) -> torch.Tensor:
    """x [T, K] float32 rounded through e4m3fn per 1x128 block (DeepSeekFp8's activation recipe)."""
    blocks = x.view(x.shape[0], -1, 128)
    scale = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    return ((blocks / scale).to(torch.float8_e4m3fn).float() * scale).view_as(x)


def _dequant(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """[N, K] fp8 times its [N/128, K/128] tile scales."""
    return w.float() * scale.repeat_interleave(128, 0).repeat_interleave(128, 1)


def trtllm_fp8_block_scale_routed_moe(
    topk_ids,
    routing_bias: torch.Tensor | None,
    hidden_states: torch.Tensor,
    hidden_states_scale: torch.Tensor,
    gemm1_weights: torch.Tensor,
    gemm1_weights_scale: torch.Tensor,
    gemm2_weights: torch.Tensor,
    gemm2_weights_scale: torch.Tensor,
    num_experts: int,
    top_k: int,
    n_group: int | None,
    topk_group: int | None,
    intermediate_size: int,
    local_expert_offset: int,
    local_num_experts: int,
    routed_scaling_factor: float | None,
    routing_method_type: int = 0,
    use_shuffled_weight: bool = False,
    weight_layout: int = 0,
    do_finalize: bool = True,
    enable_pdl: bool | None = None,
    gemm1_lora_delta: torch.Tensor | None = None,
    output: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pre-routed DeepSeek-FP8 MoE (fused_moe/core.py, 0.7.4): the (ids int32, weights bf16/fp32) pair form,
    MajorK unshuffled weights, gemm1 rows [up; gate], the activation re-quantized per 1x128 between GEMMs."""
    api = "trtllm_fp8_block_scale_routed_moe"
    if arch.major() not in TRTLLM_MOE_MAJORS:
        raise RuntimeError(
            f"{api}: trtllm-gen MoE kernels exist for the sm_100 family only, not sm_{arch.sm_version()}"
        )
    not_emulated(
        api, shuffled=(use_shuffled_weight, False), layout=(weight_layout, 0), lora=(gemm1_lora_delta, None)
    )
    not_emulated(api, do_finalize=(do_finalize, True), routing_bias=(routing_bias, None))
    require(
        isinstance(topk_ids, tuple),
        "only the (topk_ids, topk_weights) pair form is emulated",
        NotImplementedError,
    )
    ids, weights = topk_ids
    tokens, hidden = hidden_states.shape
    inter = intermediate_size
    require(ids.dtype == torch.int32 and ids.shape == (tokens, top_k), "topk_ids: [seq_len, top_k] int32")
    require(weights.dtype in (torch.bfloat16, torch.float32) and weights.shape == ids.shape, "topk_weights")
    require(hidden_states.dtype == torch.float8_e4m3fn, "hidden_states must be float8_e4m3fn for DeepSeekFp8")
    require(hidden % 128 == 0 and inter % 128 == 0, "hidden and intermediate sizes must be multiples of 128")
    require(
        hidden_states_scale.shape == (hidden // 128, tokens), "hidden_states_scale: [hidden/128, seq_len]"
    )
    require(hidden_states_scale.dtype == torch.float32, "hidden_states_scale must be float32")
    e = local_num_experts
    require(
        gemm1_weights.shape == (e, 2 * inter, hidden) and gemm1_weights.dtype == torch.float8_e4m3fn, "gemm1"
    )
    require(gemm2_weights.shape == (e, hidden, inter) and gemm2_weights.dtype == torch.float8_e4m3fn, "gemm2")
    require(gemm1_weights_scale.shape == (e, 2 * inter // 128, hidden // 128), "gemm1_weights_scale shape")
    require(gemm2_weights_scale.shape == (e, hidden // 128, inter // 128), "gemm2_weights_scale shape")
    require(local_expert_offset >= 0 and local_expert_offset + e <= num_experts, "local experts out of range")
    x = (hidden_states.float().view(tokens, -1, 128) * hidden_states_scale.T.unsqueeze(-1)).view(
        tokens, hidden
    )
    result = torch.zeros(tokens, hidden, dtype=torch.float32)
    local = ids.long() - local_expert_offset
    for expert in range(e):
        rows, slots = (local == expert).nonzero(as_tuple=True)
        if rows.numel() == 0:
            continue
        h = x[rows] @ _dequant(gemm1_weights[expert], gemm1_weights_scale[expert]).T
        act = _quantize_blocks(F.silu(h[:, inter:]) * h[:, :inter])
        y = act @ _dequant(gemm2_weights[expert], gemm2_weights_scale[expert]).T
        result.index_add_(0, rows, y * weights[rows, slots].float().unsqueeze(1))
    if output is not None:
        output.copy_(result)
        return output
    return result.to(torch.bfloat16)
