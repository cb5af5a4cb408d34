"""MoE routing and expert GEMMs (torch_npu 2.14 _op_plugin_docs.py and meta registrations).

npu_moe_gating_top_k_softmax(x, finished=None, k=1) -> (y, expert_idx, row_idx)
    x 2-D/3-D float16/bfloat16/float32 (float16 only on the 310P, per vllm-ascend's 310P router); 0 < k <= E,
    k <= 1024. y: the k largest softmax probabilities in
    x's dtype; expert_idx int32; row_idx int32, row_idx[t, j] = j * T + t. `finished` is not emulated.
npu_moe_gating_top_k(x, k, bias=None, input_ids=None, tid2eid=None, k_group=1, group_count=1,
                     group_select_mode=0, renorm=0, norm_type=0, out_flag=False,
                     routed_scaling_factor=1.0, eps=1e-20) -> (y, expert_idx, norm_out)
    x 2-D, E <= 2048; bias [E] in x's dtype; E % group_count == 0, E / group_count > 2,
    align32(E / group_count) * group_count <= 2048; 1 <= k_group <= group_count;
    1 <= k <= E / group_count * k_group; renorm 0 only. norm = softmax (norm_type 0) or sigmoid (1) of x in
    float32; experts are chosen on norm + bias, groups scored by their best (group_select_mode 0) or the sum
    of their two best (1) choice scores. Emulated for norm_type 1 (sigmoid): y = norm[chosen] / (sum + eps) *
    routed_scaling_factor in x's dtype. The softmax form's output normalisation is not spelled out in the
    documentation, so norm_type 0 raises NotEmulated; hash routing (input_ids, tid2eid) too.
npu_moe_init_routing_v2(x, expert_idx, *, scale=None, offset=None, active_num=-1, expert_capacity=-1,
                        expert_num=-1, drop_pad_mode=0, expert_tokens_num_type=0,
                        expert_tokens_num_flag=False, quant_mode=-1, active_expert_range=[],
                        row_idx_type=0) -> (expanded_x, expanded_row_idx, expert_tokens, expanded_scale)
    x [N, H] float16/bfloat16/float32; expert_idx [N, K] int32 in [0, expert_num); drop_pad_mode 0 only;
    expert_tokens_num_type 1 (counts) emulated (0 is unsupported, 2 not emulated); expert_tokens_num_flag
    must be True; quant_mode -1 (1, dynamic int8, not emulated here). The N*K (token, slot) pairs, flattened
    as t*K + k, are sorted by expert (stable); those with an expert in active_expert_range [start, end) come
    first (available rows), the rest are undefined (zeros here).
    expanded_row_idx: row_idx_type 1 ("scatter"): for each expanded row, its flat source index t*K + k (the
    first available entries are valid); row_idx_type 0 ("gather"): for each source, its expanded row or -1.
    expert_tokens int64 [end - start]: rows per active expert.
npu_grouped_matmul(x, weight, *, ..., group_list=None, split_item=0, group_type=None, group_list_type=0,
                   act_type=0, output_dtype=None, ...) -> [y]
    Emulated: one 2-D x [M, K] split along M (group_type 0) into groups given by group_list (int64 tensor;
    group_list_type 1: sizes, 0: cumulative ends), split_item 2/3 (one output), weight one [E, K, N] tensor
    (or E tensors [K, N]); the groups cover exactly M rows; one float dtype for x and weight; output rows
    x_g @ w_g in x's dtype (float32 accumulation). Bias, quantization and activation arguments: NotEmulated.
npu_moe_token_unpermute(permuted_tokens, sorted_indices, probs=None, padded_mode=False,
                        restore_shape=None) -> Tensor
    permuted_tokens [N*K, H] bfloat16; sorted_indices [N*K] int32/int64, the flat source index t*K + k of each
    permuted row; probs [N, K] bfloat16. out[t] = sum over rows i with sorted_indices[i] // K == t of
    permuted_tokens[i] * probs.flat[sorted_indices[i]]; padded_mode False only.
"""

from __future__ import annotations

import torch

from ._checks import FLOATS, NotEmulated, dtype_of_soc, is_310p, require, unused


def npu_moe_gating_top_k_softmax(
    x: torch.Tensor, finished: torch.Tensor | None = None, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "npu_moe_gating_top_k_softmax"
    unused(fn, finished=finished)
    require(x.dim() in (2, 3), fn, "x must be 2-D or 3-D")
    require(x.dtype in FLOATS, fn, f"dtype {x.dtype}: float16, bfloat16 or float32")
    dtype_of_soc(fn, x.dtype)
    require(not is_310p() or x.dtype == torch.float16, fn, "the Atlas inference series (310P) takes float16")
    require(
        0 < k <= x.shape[-1] and k <= 1024, fn, f"k={k} must satisfy 0 < k <= {x.shape[-1]} and k <= 1024"
    )
    probs = torch.softmax(x.float(), dim=-1)
    y, idx = probs.topk(k, dim=-1)
    rows = x.reshape(-1, x.shape[-1]).shape[0]
    row_idx = (torch.arange(k).unsqueeze(0) * rows + torch.arange(rows).unsqueeze(1)).to(torch.int32)
    return y.to(x.dtype), idx.to(torch.int32), row_idx.view(*x.shape[:-1], k)


def npu_moe_gating_top_k(
    x: torch.Tensor,
    k: int,
    *,
    bias: torch.Tensor | None = None,
    input_ids: torch.Tensor | None = None,
    tid2eid: torch.Tensor | None = None,
    k_group: int = 1,
    group_count: int = 1,
    group_select_mode: int = 0,
    renorm: int = 0,
    norm_type: int = 0,
    out_flag: bool = False,
    routed_scaling_factor: float = 1.0,
    eps: float = 1e-20,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "npu_moe_gating_top_k"
    unused(fn, input_ids=input_ids, tid2eid=tid2eid)
    require(x.dim() == 2 and x.dtype in FLOATS, fn, "x must be 2-D float16, bfloat16 or float32")
    dtype_of_soc(fn, x.dtype)
    tokens, experts = x.shape
    require(experts <= 2048, fn, f"{experts} experts exceed 2048")
    require(group_count > 0 and experts % group_count == 0, fn, "experts must divide into group_count groups")
    per_group = experts // group_count
    require(per_group > 2, fn, "each group needs more than 2 experts")
    require(
        -(-per_group // 32) * 32 * group_count <= 2048, fn, "32-aligned group size * group_count exceeds 2048"
    )
    require(1 <= k_group <= group_count, fn, f"k_group {k_group} must lie in [1, group_count]")
    require(1 <= k <= per_group * k_group, fn, f"k={k} must lie in [1, {per_group * k_group}]")
    require(renorm == 0, fn, "renorm must be 0")
    require(group_select_mode in (0, 1), fn, "group_select_mode must be 0 or 1")
    require(norm_type in (0, 1), fn, "norm_type must be 0 (softmax) or 1 (sigmoid)")
    if bias is not None:
        require(
            tuple(bias.shape) == (experts,) and bias.dtype == x.dtype, fn, "bias must be [E] in x's dtype"
        )
    if norm_type == 0:
        raise NotEmulated(f"torch_npu.{fn}: norm_type 0 (softmax) output normalisation is not emulated")
    norm = torch.sigmoid(x.float())
    choice = norm + (bias.float() if bias is not None else 0.0)
    if group_count > 1:
        grouped = choice.view(tokens, group_count, per_group)
        if group_select_mode == 1:
            score = grouped.topk(2, dim=-1).values.sum(-1)
        else:
            score = grouped.amax(-1)
        keep = torch.zeros_like(score, dtype=torch.bool)
        keep.scatter_(1, score.topk(k_group, dim=-1).indices, True)
        choice = choice.masked_fill(~keep.repeat_interleave(per_group, dim=1), float("-inf"))
    idx = choice.topk(k, dim=-1).indices
    y = norm.gather(1, idx)
    y = y / (y.sum(-1, keepdim=True) + eps) * routed_scaling_factor
    return y.to(x.dtype), idx.to(torch.int32), norm if out_flag else torch.zeros(0)


def npu_moe_init_routing_v2(
    x: torch.Tensor,
    expert_idx: torch.Tensor,
    *,
    scale: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
    active_num: int = -1,
    expert_capacity: int = -1,
    expert_num: int = -1,
    drop_pad_mode: int = 0,
    expert_tokens_num_type: int = 0,
    expert_tokens_num_flag: bool = False,
    quant_mode: int = -1,
    active_expert_range: list[int] | None = None,
    row_idx_type: int = 0,
    x_dtype: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "npu_moe_init_routing_v2"
    unused(fn, scale=scale, offset=offset, x_dtype=x_dtype)
    require(
        x.dim() == 2 and x.dtype in FLOATS,
        fn,
        "x must be 2-D float16, bfloat16 or float32 (int8 not emulated)",
    )
    dtype_of_soc(fn, x.dtype)
    require(expert_idx.dim() == 2 and expert_idx.dtype == torch.int32, fn, "expert_idx must be 2-D int32")
    require(expert_idx.shape[0] == x.shape[0], fn, "one expert_idx row per token")
    require(drop_pad_mode == 0, fn, "drop_pad_mode: only 0 (dropless) is supported")
    require(expert_tokens_num_type in (1, 2), fn, "expert_tokens_num_type: only 1 and 2 are supported")
    if expert_tokens_num_type == 2:
        raise NotEmulated(f"torch_npu.{fn}: key_value expert counts are not emulated")
    require(expert_tokens_num_flag, fn, "expert_tokens_num_flag: only True is supported")
    require(0 < expert_num <= 10240, fn, f"expert_num {expert_num} must lie in (0, 10240]")
    require(quant_mode in (-1, 1), fn, "quant_mode: -1 or 1")
    if quant_mode == 1:
        raise NotEmulated(f"torch_npu.{fn}: dynamic quantization (quant_mode 1) is not emulated")
    require(row_idx_type in (0, 1), fn, "row_idx_type must be 0 or 1")
    start, end = list(active_expert_range) if active_expert_range else [0, expert_num]
    require(
        0 <= start < end <= expert_num, fn, "active_expert_range must satisfy 0 <= start < end <= expert_num"
    )
    rows, top_k = expert_idx.shape
    flat = expert_idx.reshape(-1).long()
    require(bool(((flat >= 0) & (flat < expert_num)).all()), fn, "expert ids must lie in [0, expert_num)")
    order = torch.sort(flat, stable=True).indices
    active = (flat[order] >= start) & (flat[order] < end)
    src = order[active]
    available = src.numel()
    if active_num > 0:
        available = min(available, active_num)
        src = src[:available]
    expanded = torch.zeros(rows * top_k, x.shape[1], dtype=x.dtype)
    expanded[:available] = x[src // top_k]
    if row_idx_type == 1:
        row_idx = torch.full((rows * top_k,), -1, dtype=torch.int32)
        row_idx[:available] = src.to(torch.int32)
    else:
        row_idx = torch.full((rows * top_k,), -1, dtype=torch.int32)
        row_idx[src] = torch.arange(available, dtype=torch.int32)
    counts = torch.bincount(flat[src] - start, minlength=end - start).to(torch.int64)
    return expanded, row_idx, counts, torch.zeros(rows * top_k)


def npu_grouped_matmul(
    x: list[torch.Tensor],
    weight: list[torch.Tensor],
    *,
    bias=None,
    scale=None,
    offset=None,
    antiquant_scale=None,
    antiquant_offset=None,
    per_token_scale=None,
    group_list=None,
    activation_input=None,
    activation_quant_scale=None,
    activation_quant_offset=None,
    split_item: int = 0,
    group_type: int | None = None,
    group_list_type: int | None = 0,
    act_type: int | None = 0,
    tuning_config=None,
    output_dtype=None,
    x_dtype=None,
    weight_dtype=None,
    scale_dtype=None,
    per_token_scale_dtype=None,
) -> list[torch.Tensor]:
    fn = "npu_grouped_matmul"
    unused(
        fn,
        bias=bias,
        scale=scale,
        offset=offset,
        antiquant_scale=antiquant_scale,
        antiquant_offset=antiquant_offset,
        per_token_scale=per_token_scale,
        activation_input=activation_input,
        activation_quant_scale=activation_quant_scale,
        activation_quant_offset=activation_quant_offset,
        output_dtype=output_dtype,
        x_dtype=x_dtype,
        weight_dtype=weight_dtype,
        scale_dtype=scale_dtype,
        per_token_scale_dtype=per_token_scale_dtype,
    )
    require(act_type == 0, fn, "fused activations are not emulated (act_type 0)")
    require(
        isinstance(x, (list, tuple)) and isinstance(weight, (list, tuple)),
        fn,
        "x and weight are tensor lists",
    )
    if split_item not in (2, 3) or group_type != 0 or len(x) != 1:
        raise NotEmulated(
            f"torch_npu.{fn}: only one x split along M into one output (split_item 2/3) is emulated"
        )
    a = x[0]
    require(a.dim() == 2, fn, "x must be 2-D for split_item 2/3")
    require(a.dtype in FLOATS, fn, f"x dtype {a.dtype}: float16, bfloat16 or float32 (int8 not emulated)")
    dtype_of_soc(fn, a.dtype)
    w = weight[0] if len(weight) == 1 and weight[0].dim() == 3 else torch.stack(list(weight))
    require(w.dim() == 3 and w.dtype == a.dtype, fn, "weight: [E, K, N] (or E tensors [K, N]) in x's dtype")
    require(w.shape[1] == a.shape[1], fn, f"weight K {w.shape[1]} != x K {a.shape[1]}")
    require(
        isinstance(group_list, torch.Tensor) and group_list.dtype == torch.int64,
        fn,
        "group_list: int64 tensor",
    )
    require(group_list_type in (0, 1), fn, "group_list_type must be 0 or 1")
    assert isinstance(group_list, torch.Tensor)
    sizes = group_list.tolist()
    if group_list_type == 0:
        require(
            all(b >= a_ for a_, b in zip([0, *sizes], sizes, strict=False)),
            fn,
            "cumulative group_list must not decrease",
        )
        sizes = [b - a_ for a_, b in zip([0, *sizes], sizes, strict=False)]
    else:
        require(len(sizes) != 1, fn, "a group_list of sizes cannot have length 1")
    require(all(s >= 0 for s in sizes), fn, "group sizes must be non-negative")
    require(len(sizes) == w.shape[0], fn, f"{len(sizes)} groups for {w.shape[0]} weights")
    require(sum(sizes) == a.shape[0], fn, f"groups cover {sum(sizes)} rows, x has {a.shape[0]}")
    out = torch.empty(a.shape[0], w.shape[2], dtype=a.dtype)
    start = 0
    for e, n in enumerate(sizes):
        out[start : start + n] = (a[start : start + n].float() @ w[e].float()).to(a.dtype)
        start += n
    return [out]


def npu_moe_token_unpermute(
    permuted_tokens: torch.Tensor,
    sorted_indices: torch.Tensor,
    probs: torch.Tensor | None = None,
    padded_mode: bool = False,
    restore_shape=None,
) -> torch.Tensor:
    fn = "npu_moe_token_unpermute"
    require(not padded_mode, fn, "padded_mode: only False is supported")
    require(
        permuted_tokens.dim() == 2 and permuted_tokens.dtype == torch.bfloat16,
        fn,
        "permuted_tokens: 2-D bf16",
    )
    require(
        sorted_indices.dim() == 1 and sorted_indices.dtype in (torch.int32, torch.int64), fn, "sorted_indices"
    )
    rows = permuted_tokens.shape[0]
    require(sorted_indices.shape[0] == rows, fn, "one sorted index per permuted row")
    top_k = 1
    if probs is not None:
        require(probs.dim() == 2 and probs.dtype == torch.bfloat16, fn, "probs must be 2-D bfloat16")
        top_k = probs.shape[1]
        require(probs.numel() == rows, fn, "probs must be [num_tokens, topK] with num_tokens * topK rows")
    idx = sorted_indices.long()
    require(bool(((idx >= 0) & (idx < rows)).all()), fn, "sorted indices must lie in [0, num_tokens * topK)")
    require(idx.unique().numel() == rows, fn, "sorted indices must be a permutation")
    weights = probs.float().reshape(-1)[idx] if probs is not None else torch.ones(rows)
    out = torch.zeros(rows // top_k, permuted_tokens.shape[1])
    out.index_add_(0, idx // top_k, permuted_tokens.float() * weights.unsqueeze(1))
    return out.to(torch.bfloat16)
