"""Where each vendor library builds or runs, copied from the library's own gate (file and version named).

Hardware facts (tcgen05, wgmma, fp8 MMA...) are `Kernel.features` from platforms/cuda.py's table; the sets
here are what a library simply does not build or dispatch for, so they change when the library changes.
The emulators (emulators/) raise on the same sets, and tests/test_gates.py checks each one.
"""

from __future__ import annotations

import torch

from anyaccel.platforms.base import Capability, CapabilityRange
from anyaccel.platforms.cuda import sm


def caps(*numbers: int) -> frozenset[Capability]:
    """{sm(10, 0), ...} from the integers libraries write (100 = sm_100)."""
    return frozenset(sm(n // 10, n % 10) for n in numbers)


# --- FlashInfer (flashinfer-python 0.7.4, wheel) -----------------------------------------------------
# trtllm-gen attention: decode.py trtllm_batch_decode_with_kv_cache picks "trtllm-gen" only when the
# compute capability's major is 10 (its "auto" branch), and the trtllm-gen FMHA cubins are built for the
# sm_100 family; sm_110 reaches neither trtllm-gen nor XQA (XQA's check: major in (9, 10, 12)), and sm_12x
# fails with "Unsupported architecture" (FlashInfer #3263, SGLang #24633). sm_107 is left out: no cubin
# for it was found.
FLASHINFER_TRTLLM_ATTENTION = caps(100, 103)
# trtllm-gen with an fp8 (e4m3) KV cache: kernels exist for the (q, kv, out) dtype triples FlashInfer's own
# tests run (tests/attention/test_trtllm_gen_attention_decode.py and _prefill.py, "q_dtype,kv_dtype,o_dtype",
# fb28d72; the launcher looks the triple up and fails with "Trtllm-gen kernels not found" otherwise):
# decode takes fp16/bf16 q over an e4m3 cache (out in q's dtype) or e4m3 q; context (prefill) takes an e4m3
# cache with e4m3 q only, out fp16/bf16 (vLLM's FlashInfer backend: "TRTLLM prefill attention does not
# support BF16 Q and fp8 kv cache"). The fp8 cases there run head dims 128 and 256 only.
# Scales: bmm1_scale = q_scale * k_scale * softmax scale, bmm2_scale = v_scale (vLLM's FlashInferImpl).
TRTLLM_DECODE_Q_WITH_FP8_KV = frozenset({torch.float16, torch.bfloat16, torch.float8_e4m3fn})
TRTLLM_CONTEXT_Q_WITH_FP8_KV = frozenset({torch.float8_e4m3fn})
TRTLLM_FP8_KV_HEAD_DIMS = (128, 256)
# FA2/FA3 paged wrappers: JIT-built for sm_80 and later (decode.py raises below major 8).
FLASHINFER_PAGED = CapabilityRange(sm(8, 0), sm(12, 9))
# fused_moe/fused_routing_dsv3.py: @supported_compute_capability([89, 90, 100, 103, 107, 120, 121])
FLASHINFER_DSV3_ROUTING = caps(89, 90, 100, 103, 107, 120, 121)
# fused_moe/core.py get_cutlass_fused_moe_module builds for 89/90/100/103/107/110/120/121; sm_110 is left
# out because its CUTLASS MoE fails there (FlashInfer #3134; vLLM removed it, PR #40808); sm_89 and sm_107
# are not claimed (not surveyed by any engine).
FLASHINFER_CUTLASS_MOE = caps(90, 100, 103, 120, 121)
# gemm/gemm_base.py _cutlass_gemm_fp8_nt_groupwise_requirement:
# @supported_compute_capability([100, 103, 107, 120, 121]) (not 90, not 110)
FLASHINFER_FP8_GROUPWISE = caps(100, 103, 107, 120, 121)
# Block-scaled GEMMs (gemm/gemm_base.py): mm_fp4's CUTLASS backend, _cutlass_gemm_fp4_requirement, and
# mm_mxfp8's, _cutlass_gemm_mxfp8_requirement: @supported_compute_capability([100, 103, 107, 110, 120, 121]).
# (cuDNN adds no capability and needs the cudnn package; trtllm is 100/103/107 with shuffled weights.)
FLASHINFER_MM_FP4_CUTLASS = caps(100, 103, 107, 110, 120, 121)
FLASHINFER_MM_MXFP8_CUTLASS = caps(100, 103, 107, 110, 120, 121)
# group_gemm_mxfp8_mxfp4_nt_groupwise (gemm_base.py): runs on is_sm100a_supported (major == 10) or
# is_sm12x_supported (major == 12), else "Unsupported device for MXFP4 group GEMM": not sm_110 (major 11).
# _check_group_gemm_mxfp8_mxfp4_nt_groupwise_problem_size: n % 8 == 0, k % 128 == 0; every m_indptr entry
# a multiple of 4 (its docstring).
FLASHINFER_GROUP_GEMM_MXFP8_MXFP4 = caps(100, 103, 107, 120, 121)
FLASHINFER_GROUP_GEMM_ALIGN_N, FLASHINFER_GROUP_GEMM_ALIGN_K, FLASHINFER_GROUP_GEMM_ALIGN_M = 8, 128, 4
# csrc fp4_gemm_cutlass*.cu / mxfp8_gemm_cutlass*.cu: `constexpr int alignment = 32`, k % 32 and n % 32;
# _check_mm_mxfp8_problem_size: n >= 128 and k >= 128 ("the output may contain NaN/Inf" below).
FLASHINFER_MX_GEMM_ALIGN = 32
FLASHINFER_MM_MXFP8_MIN_NK = 128
# quantization/fp4_quantization.py fp4_quantize: utils._check_block_scale_quantization_support raises below
# major 10 ("requires SM100 or newer"); the JIT modules exist for sm_100/103/107/110/120/121.
FLASHINFER_FP4_QUANTIZE = caps(100, 103, 107, 110, 120, 121)
# norm, rope and activation kernels carry no architecture gate (plain CUDA, JIT-built from sm_75 up);
# we claim what the engines run them on.
FLASHINFER_ELEMENTWISE = CapabilityRange(sm(8, 0), sm(12, 9))

# --- FlashAttention-4 (flash-attn-4 4.0.0b36, flash_attn/cute/interface.py) --------------------------
# `assert arch // 10 in [8, 9, 10, 11, 12]`; the SM80 path is not claimed (no engine runs FA4 there).
FA4 = CapabilityRange(sm(9, 0), sm(12, 9))
# sm_12x: "Paged KV not supported on SM 12.0" (page_table must be None), and no split-KV.
FA4_NO_PAGED_KV = CapabilityRange(sm(12, 0), sm(12, 9))
# `assert arch // 10 == 10, "FP8 is only supported on SM100 ..."`; q, k and v must share the fp8 dtype and the
# output is bf16. The public flash_attn_varlen_func takes no q/k/v descales (only the private _flash_attn_fwd
# has q_descale/k_descale/v_descale [B, Hkv]), so a scaled fp8 cache is not served through it.
FA4_FP8 = CapabilityRange(sm(10, 0), sm(10, 9))
# _validate_head_dims: 9.x: 8..256 (multiple of 8 for 16-bit types); 10.x/11.x: 8..128, or 256 (and the
# DeepSeek shapes); 12.x: not validated there, its SM80-style kernel takes up to 256.
FA4_HEAD_DIM_128_OR_256 = CapabilityRange(sm(10, 0), sm(11, 9))

# --- DeepGEMM (deepseek-ai/DeepGEMM 54e2261, csrc/apis/gemm.hpp fp8_fp4_gemm_nt) ----------------------
# Dispatches arch_major 9 with float scale factors and arch_major 10 with packed UE8M0 (int) ones;
# anything else is "Unsupported architecture or scaling factor types".
DEEPGEMM = CapabilityRange(sm(9, 0), sm(10, 9))
# csrc/apis/layout.hpp transform_sf_into_required_layout: float scales stay float only on arch 9 (or with
# disable_ue8m0_cast); on arch 10 they are cast to UE8M0, i.e. rounded to powers of two.
DEEPGEMM_FLOAT_SCALES = CapabilityRange(sm(9, 0), sm(9, 9))

# --- torch 2.13 (aten/src/ATen/native/cuda/ScaledBlas.cpp, GroupedBlas.cpp) ---------------------------
# _scaled_mm with 1x128 / 128x128 block scales: sm_90 only (cuBLASLt >= 12.9); not on Blackwell.
TORCH_SCALED_MM_BLOCK = caps(90)
# _grouped_mm: the fast bf16 CUTLASS path is built for 9.x and 10.x; elsewhere a slow fallback.
TORCH_GROUPED_MM = CapabilityRange(sm(9, 0), sm(10, 9))
# torch.nn.attention.varlen.varlen_attn: FlashAttention-2 inside torch, sm_80 and later.
TORCH_VARLEN = CapabilityRange.at_least(sm(8, 0))

# --- torch symmetric memory all-reduce (sizes: vLLM distributed/device_communicators/all_reduce_utils.py) --
# The largest message (bytes of one rank's tensor) per capability and world size for which symmetric
# memory beats NCCL; capabilities and world sizes without an entry stay on NCCL (sm_110, sm_12x, sm_107).
MiB = 1 << 20
SYMM_MEM_MAX_BYTES = {
    sm(9, 0): {2: 64 * MiB, 4: 32 * MiB, 6: 64 * MiB, 8: 64 * MiB},
    sm(10, 0): {2: 8 * MiB, 4: 32 * MiB, 6: 128 * MiB, 8: 128 * MiB},
    sm(10, 3): {2: 4 * MiB, 4: 32 * MiB, 6: 32 * MiB, 8: 64 * MiB},
}
SYMM_MEM = frozenset(SYMM_MEM_MAX_BYTES)
# World sizes where the NVLS multimem reduction beats two-shot (same source); two-shot elsewhere.
MULTIMEM_WORLD_SIZES = {sm(9, 0): (4, 6, 8), sm(10, 0): (6, 8), sm(10, 3): (6, 8)}
