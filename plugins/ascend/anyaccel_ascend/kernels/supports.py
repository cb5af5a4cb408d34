"""Bind-time predicates: None when torch_npu can serve the spec, else the reason (from gates.py).

Block size, layout and dtype are also declared on the records (kv_block_sizes, kv_layout, dtypes); these
predicates add what a record cannot say: head dims, head counts, window/soft-cap/sink/fp8 support.
"""

from __future__ import annotations

import os

import torch

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.base import Platform

from .. import gates
from ..layouts import NAME as NZ


def _no_fp8(spec: AttentionSpec) -> str | None:
    if spec.fp8_kv:
        return (
            "fp8 KV caches: no fp8 on Ascend A2/A3/310P (torch_npu's attention takes 16-bit or int8 caches)"
        )
    return None


def _fia(spec: AttentionSpec) -> str | None:
    if spec.softcap > 0:
        return "soft-cap: npu_fused_infer_attention_score has no soft-cap argument"
    if spec.kv_layout not in ("NHD", "HND"):
        return f"reads NHD or HND caches, not {spec.kv_layout}"
    d, hq, hkv = spec.head_dim, spec.num_q_heads, spec.num_kv_heads
    if d % gates.FIA_HEAD_DIM_ALIGN or d > gates.FIA_MAX_HEAD_DIM:
        return f"head dim {d}: FIA needs a multiple of 16 up to 512 for 16-bit inputs"
    if hq > gates.FIA_MAX_HEADS or hq // hkv > gates.FIA_MAX_GQA:
        return f"{hq} query heads over {hkv} KV heads: FIA takes at most 256 heads and a ratio of 64"
    if spec.kv_layout == "NHD" and hkv * d > gates.FIA_MAX_H:
        return f"Hkv*D = {hkv * d} exceeds 65535 in the (blocknum, blocksize, H) cache view"
    if spec.sinks and d > gates.SINK_MAX_V_HEAD_DIM:
        return f"sinks: the _v2 learnable_sink needs a value head dim <= 128, got {d}"
    return _no_fp8(spec)


def fia_prefill(spec: AttentionSpec, platform: Platform) -> str | None:
    return _fia(spec)


def fia_decode(spec: AttentionSpec, platform: Platform) -> str | None:
    return _fia(spec)


def scatter_kv(spec: AttentionSpec, platform: Platform) -> str | None:
    return _no_fp8(spec)


def _paged(spec: AttentionSpec) -> str | None:
    if spec.sliding_window > 0 or spec.softcap > 0 or spec.sinks:
        return "the ATB paged attention applies no window, soft-cap or sinks"
    return _no_fp8(spec)


def paged_310p(spec: AttentionSpec, platform: Platform) -> str | None:
    d = spec.head_dim
    if d % 16 or d > gates.PA_MAX_HEAD_DIM:
        return f"head dim {d}: NZ caches need a multiple of 16 up to 256"
    if spec.block_size * d > gates.PA_BLOCK_TIMES_HEAD:
        return f"block_size * head dim = {spec.block_size * d} exceeds 128 * 128 on the 310P"
    return _paged(spec)


def paged_prefill_310p(spec: AttentionSpec, platform: Platform) -> str | None:
    if not spec.causal:
        return "non-causal prefill: paged attention rows read a prefix of the cache (causal only)"
    return paged_310p(spec, platform)


def paged_hd512(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.head_dim not in gates.PA_A2_HEAD_DIMS:
        return f"head dim {spec.head_dim}: on A2/A3 the paged attention is taken for head dim 512 only"
    return _paged(spec)


def write_kv_nz(spec: AttentionSpec, platform: Platform) -> str | None:
    if spec.kv_layout != NZ:
        return f"writes the {NZ} cache"
    if spec.head_dim % 16:
        return f"head dim {spec.head_dim}: NZ caches need a multiple of 16"
    return _no_fp8(spec)


def mrope(spec, platform: Platform) -> str | None:
    align = gates.MROPE_ALIGN.get(spec.dtype, 32)
    if spec.rotary_dim % align:
        return f"rotary_dim {spec.rotary_dim}: npu_mrope needs a multiple of {align} for {spec.dtype}"
    if spec.rotary_dim > spec.head_dim:
        return f"rotary_dim {spec.rotary_dim} exceeds head dim {spec.head_dim}"
    if spec.num_q_heads * spec.head_dim > gates.MROPE_MAX_WIDTH:
        return (
            f"query row {spec.num_q_heads}x{spec.head_dim} wider than 4096: SGLang takes torch's rope there"
        )
    return None


def apply_rotary(spec, platform: Platform) -> str | None:
    if spec.head_dim not in gates.APPLY_ROPE_HEAD_DIMS or spec.rotary_dim != spec.head_dim:
        return (
            f"head dim {spec.head_dim}/rotary {spec.rotary_dim}: npu_apply_rotary_pos_emb rotates 64/128 dims"
        )
    if not spec.is_neox:
        return "GPT-J (interleaved) rope: npu_apply_rotary_pos_emb has only the 'half' mode on A2/A3/310P"
    return None


def topk_softmax(spec, platform: Platform) -> str | None:
    if spec.scoring != "softmax" or spec.grouped or spec.has_bias:
        return "npu_moe_gating_top_k_softmax: plain softmax routing (no groups, no bias)"
    if spec.top_k > gates.TOPK_SOFTMAX_MAX_K:
        return f"top_k {spec.top_k} exceeds 1024"
    return None


def gating_top_k(spec, platform: Platform) -> str | None:
    if spec.scoring != "sigmoid":
        return "npu_moe_gating_top_k is used for sigmoid scoring (its softmax output form is not confirmed)"
    if spec.num_experts > gates.GATING_MAX_EXPERTS:
        return f"{spec.num_experts} experts exceed 2048"
    return None


def experts(spec, platform: Platform) -> str | None:
    if spec.quant != "none":
        return f"quant {spec.quant}: the grouped-matmul path here is unquantized"
    if spec.activation != "silu":
        return f"activation {spec.activation}: npu_swiglu is SiLU-gated only"
    if spec.has_bias:
        return "no expert biases: npu_grouped_matmul is called without them"
    if spec.num_experts < 2:
        return "npu_grouped_matmul's size list cannot have length 1"
    if spec.num_experts > gates.ROUTING_MAX_EXPERTS:
        return f"{spec.num_experts} experts exceed npu_moe_init_routing_v2's 10240"
    return None


def int8_gemm(spec, platform: Platform) -> str | None:
    if spec.scales != "channel":
        return f"scales {spec.scales}: W8A8 dynamic is per-token activations and per-channel weights"
    if spec.out_dtype not in gates.QUANT_MATMUL_OUT:
        return f"output {spec.out_dtype}: npu_quant_matmul with a per-token scale returns float16 or bfloat16"
    return None


def fp8_dequantized(spec, platform: Platform) -> str | None:
    if os.environ.get(gates.FP8_SETTING, "").strip().lower() != "dequantize":
        return (
            f"no fp8 on {platform.capability} (no fp8 matrix units): fp8 checkpoints are not served "
            f"natively; {gates.FP8_SETTING}=dequantize dequantizes their weights once at load"
        )
    if spec.fp8_dtype != "float8_e4m3fn":
        return f"{spec.fp8_dtype}: checkpoints hold float8_e4m3fn"
    return None


def w8a16(spec, platform: Platform) -> str | None:
    if spec.group_size % gates.WQBMM_GROUP_ALIGN:
        return f"group size {spec.group_size}: per-group antiquant needs a multiple of 32"
    return None


def w4a16(spec, platform: Platform) -> str | None:
    if spec.format not in ("gptq", "awq"):
        return f"format {spec.format}: GPTQ and AWQ are prepared into int4 with offsets"
    if spec.act_order:
        return "act-order (g_idx): npu_weight_quant_batchmatmul reads contiguous groups"
    if spec.group_size % gates.WQBMM_GROUP_ALIGN:
        return f"group size {spec.group_size}: per-group antiquant needs a multiple of 32"
    if spec.n % 8:
        return f"N {spec.n}: npu_convert_weight_to_int4pack packs 8 columns per word"
    return None


def unserved(op: str):
    """A predicate that always declines `op` with the reason gates.UNSERVED gives for it."""

    def supports(spec, platform: Platform) -> str | None:
        return gates.UNSERVED[op].format(soc=platform.capability, setting=gates.FP8_SETTING)

    return supports


def with_bf16_gate(predicate):
    """`predicate` behind the platform's bf16 feature: the 310P has no bfloat16 (platforms/npu.py FEATURES),
    and every torch_npu function rejects it there."""

    def supports(spec, platform: Platform) -> str | None:
        dtype = getattr(spec, "dtype", None) or getattr(spec, "out_dtype", None)
        if dtype == torch.bfloat16 and "bf16" not in platform.features:
            return f"bfloat16: {platform.capability} has no bfloat16 (feature bf16)"
        return predicate(spec, platform) if predicate is not None else None

    return supports
