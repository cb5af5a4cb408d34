"""What torch_npu and CANN accept, as data, each with its source. The kernels' `supports` predicates
(kernels/supports.py) turn these into reasons and the emulator (emulators/torch_npu/) raises on the same
limits; tests/test_gates.py checks every table.

Sources (read for facts only):
  WHEEL    torch_npu 2.14.0 (PyPI, cp311 manylinux x86_64): torch_npu/_op_plugin_docs.py (the operator docs),
           torch_npu/op_plugin/meta/_meta_registrations.py, torch_npu/op_plugin/atb/_atb_api_docs.py
  VA       vllm-project/vllm-ascend @ 182b75e: vllm_ascend/attention/attention_v1.py, attention/utils.py,
           device/device_op.py, _310p/, ops/, quantization/methods/
  OP_PLUGIN  Ascend/op-plugin @ 517f2e7d0f202f38b76310706cb977ca2388ad21: op_plugin/config/
           op_plugin_functions.yaml (every registered signature the kernels and the emulator use),
           op_plugin/ops/atb/PagedAttentionAtb.cpp and ReshapeAndCachAtb.cpp (the ATB ops' schemas),
           op_plugin/ops/opapi/*.cpp, docs/zh/custom_APIs/torch_npu/*.md (products, dtypes, shapes)
  OPS_NN   hicann/ops-nn @ 0c8fd4c82a72977ef4a1c2e8b0fd1552b44f3657: activation/ge_glu_v2/docs/aclnnGeGluV3.md
  NPU_PY   anyaccel's platforms/npu.py (the SoC table and the bf16 feature)
"""

from __future__ import annotations

import torch

from anyaccel.platforms.npu import parse_capability

A2, A3, P310 = (parse_capability(s) for s in ("ascend910b", "ascend910_93", "ascend310p"))

# --- SoCs each function serves ---------------------------------------------------------------------------
# WHEEL, every doc's "支持的型号"/product notes: FIA, scatter_pa_kv_cache, moe_init_routing_v2,
# moe_token_unpermute, npu_mrope name Atlas A2/A3 only; VA runs the 310P through its own _310p/ path
# (paged attention, reshape_and_cache into NZ caches, npu_apply_rotary_pos_emb).
A2_A3 = frozenset({A2, A3})
INFERENCE_310P = frozenset({P310})
# WHEEL: npu_rms_norm / npu_add_rms_norm / npu_swiglu list no product restriction; VA ops/layernorm.py and
# ops/activation.py use them on every SoC it serves (A2, A3, 310P). The Atlas training series (ascend910)
# is not served by VA and is left out.
ALL_SERVED = frozenset({A2, A3, P310})
# npu_geglu calls aclnnGeGluV3 (OP_PLUGIN GeGluKernelNpuOpApi.cpp), which OPS_NN's aclnnGeGluV3.md lists for
# Atlas A2, A3 and the inference series (310P: float32/float16 only, the bf16 gate), not for the training
# series (ascend910).
GEGLU_SOCS = frozenset({A2, A3, P310})

# --- attention: npu_fused_infer_attention_score (WHEEL _op_plugin_docs.py, "page attention场景") ----------
# With prompts (some q_len > 1) a paged cache needs block_size in [128, 512], a multiple of 128; decode-only
# batches accept any 16-aligned size <= 512 and 128 is recommended. One size for both: 128.
FIA_BLOCK_SIZES = frozenset({128})
FIA_HEAD_DIM_ALIGN = 16  # 16-bit inputs: D 16-aligned
FIA_MAX_HEAD_DIM = 512
FIA_MAX_HEADS = 256
FIA_MAX_GQA = 64  # num_heads / num_key_value_heads
FIA_MAX_H = 65535  # KV_N * D of the (blocknum, blocksize, H) cache form
FIA_DTYPES = frozenset({torch.float16, torch.bfloat16})  # query: float16, bfloat16 (int8 is quantized)
# The compressed causal/band mask sparse modes 2-4 need (WHEEL).
MASK_SIZE = 2048
SPARSE_CAUSAL = 3  # rightDownCausal: the new tokens sit at the end of their sequence (VA attention_v1.py)
SPARSE_BAND = 4  # band with pre_tokens/next_tokens: sliding windows (VA attention_v1.py)
# A window of W keys (the current one included) is pre_tokens = W - 1: OP_PLUGIN's
# torch_npu-npu_fusion_attention.md example masks keys with k < q - pre_tokens (tril(k=-pre_tokens-1)).
# VA attention_v1.py passes pre_tokens = sliding_window, one key more by that reading (unconfirmed on device).
# npu_fused_infer_attention_score_v2 learnable_sink (WHEEL): bfloat16 [Hq], TND only, value D <= 128,
# no quantization.
SINK_MAX_V_HEAD_DIM = 128
SINK_DTYPE = torch.bfloat16

# --- attention: _npu_paged_attention (WHEEL _atb_api_docs.py, PagedAttention spec) ------------------------
# block_size % 16 == 0 and <= 128; head size in (0, 256] (NZ: a multiple of 16); Atlas inference (310P):
# float16 only, batch <= 2048, block_size * head_size <= 128 * 128. VA _310p/attention uses it for decode
# on the 310P (and chunked prefill through its splitfuse variant); VA attention/utils.py
# `using_paged_attention` also takes it on A2/A3 for head dim 512 (K/V head sizes up to 576 there).
PA_MAX_BLOCK = 128
PA_MAX_HEAD_DIM = 256
PA_BLOCK_TIMES_HEAD = 128 * 128
PA_MAX_BATCH = 2048
PA_A2_HEAD_DIMS = frozenset({512})  # VA attention/utils.py
# 310P NZ caches: VA allocates [num_blocks, Hkv*D/16, block_size, 16] with block sizes 128 (and 64).
NZ_BLOCK_SIZES = frozenset({128})

# --- rope ------------------------------------------------------------------------------------------------
# npu_mrope (WHEEL): rotary_dim a multiple of 32 for 16-bit inputs, 16 for float32; rotary_mode "half" or
# "interleave": OP_PLUGIN op_plugin/ops/opapi/RopeWithSinCosCacheKernelNpuOpApi.cpp accepts exactly these two
# (its docs/zh/.../torch_npu-npu_mrope.md says "interleaved", as VA ops/rotary_embedding.py passes for GPT-J
# rope, which that check refuses).
MROPE_ALIGN = {torch.float16: 32, torch.bfloat16: 32, torch.float32: 16}
# SGLang (python/sglang/srt/layers/rotary_embedding.py forward_npu) takes npu_mrope only while the query
# row (heads * head size) is at most 4096 wide, and torch otherwise.
MROPE_MAX_WIDTH = 4096
# npu_apply_rotary_pos_emb on A2/A3/310P (WHEEL): head dim 64 or 128, "half" mode only, one dtype.
APPLY_ROPE_HEAD_DIMS = frozenset({64, 128})

# --- MoE -------------------------------------------------------------------------------------------------
# npu_moe_gating_top_k_softmax (WHEEL): k <= 1024. WHEEL and OP_PLUGIN's doc name Atlas A2/A3 (float16,
# bfloat16, float32); VA runs it on the 310P too (_310p/fused_moe/grouped_topk_router.py), with float16 logits
# ("only supports DT_FLOAT16 + ND" there) in calls of at most 1024 tokens.
TOPK_SOFTMAX_MAX_K = 1024
TOPK_SOFTMAX_310P_DTYPE = torch.float16
TOPK_SOFTMAX_310P_TOKENS = 1024
# npu_moe_gating_top_k (WHEEL): E <= 2048, E / groups > 2, align32(E / groups) * groups <= 2048, renorm 0.
GATING_MAX_EXPERTS = 2048
# npu_moe_init_routing_v2 (WHEEL): expert_num in (0, 10240] for count mode (expert_tokens_num_type 1).
ROUTING_MAX_EXPERTS = 10240
# npu_moe_token_unpermute (WHEEL): permuted tokens and probs in bfloat16 only.
UNPERMUTE_DTYPE = torch.bfloat16

# --- quantization ----------------------------------------------------------------------------------------
# npu_weight_quant_batchmatmul (WHEEL): per-group antiquant needs a group size that is a multiple of 32.
WQBMM_GROUP_ALIGN = 32
# npu_quant_matmul with a per-token scale (WHEEL): float16 or bfloat16 output.
QUANT_MATMUL_OUT = frozenset({torch.float16, torch.bfloat16})
# No fp8 matrix units on A2/A3 (NPU_PY: fp8_dtype None; VA uses fp8/MXFP only on the A5 generation): fp8
# checkpoints are dequantized at load only when the user asks (this plugin's setting).
FP8_SETTING = "ANYACCEL_ASCEND_FP8"

# --- ops torch_npu cannot serve on A2/A3/310P: the reason each npu record gives (kernels/unserved.py) -------
QUANT_MATMUL_DOC = "op-plugin docs/zh/custom_APIs/torch_npu/torch_npu-npu_quant_matmul.md"
UNSERVED = {
    # OP_PLUGIN torch_npu-npu_dynamic_quant.md: dst_type int8 or quint4x2 on A2/A3;
    # torch_npu-npu_quant_matmul.md: x1/x2 int8 or int32-packed int4 only. fp8 and MX formats come with the
    # Ascend 950: WHEEL's npu_dynamic_mx_quant doc names Ascend 950PR/950DT as its only products (so does
    # OP_PLUGIN torch_npu-npu_dynamic_dual_level_mx_quant.md); VA takes its MXFP paths on A5 only.
    "quant.quantize_fp8": (
        "no fp8 on {soc}: torch_npu quantizes to int8 or int4 there (npu_dynamic_quant dst_type); fp8 "
        "checkpoints run only as quant.fp8_gemm's dequantize-at-load ({setting}=dequantize), whose "
        "activations the reference quantizes"
    ),
    "quant.quantize_mx": (
        "no MX formats on {soc}: npu_dynamic_mx_quant and the MX matmuls serve the Ascend 950 generation "
        "only; A2/A3/310P quantize to int8 or int4"
    ),
    "quant.mx_gemm": (
        "no MX formats on {soc}: npu_quant_matmul there multiplies int8 or int4 (int32-packed) operands "
        f"only ({QUANT_MATMUL_DOC}); fp4/fp8 with e8m0 block scales come with the Ascend 950"
    ),
    # OP_PLUGIN torch_npu-npu_quant_matmul.md: pertoken_scale is 1-D (m,), scale 1-D (1 or n) on A2/A3 (the
    # 310P takes no pertoken_scale); the int32 sum over K is rescaled once per output element.
    "quant.w8a8_gemm": (
        "on {soc}, npu_quant_matmul rescales whole rows and columns only (pertoken_scale [M], scale "
        f"[1] or [N]: {QUANT_MATMUL_DOC}); this op's activations change scale every 32 input features "
        "and its weights every group, which one int32 sum over K cannot carry (quant.w8a16_gemm serves "
        "these weights)"
    ),
    "quant.w4a8_gemm": (
        "on {soc}, npu_quant_matmul multiplies int8 by int8 or int4 by int4, not int8 activations by "
        f"int4 weights, and rescales whole rows and columns only ({QUANT_MATMUL_DOC}); this op's "
        "activations change scale every 32 input features (quant.w4a16_gemm serves these weights)"
    ),
}
