"""What the Intel stacks accept, as data, each with its source. The kernels' `supports` predicates
(kernels/supports.py) turn these into reasons and the emulators (emulators/) raise on the same limits;
tests/test_gates.py checks the tables that decide selection.

Sources (read for facts only):
  VXK   vllm-project/vllm-xpu-kernels @ 4543b58: CMakeLists.txt, csrc/utils.h, csrc/flash_attn/flash_api.cpp,
        csrc/xpu/attn/ (xe_2/fmha_xe2.cpp, paged_decode_utils.hpp, attn_interface.cpp),
        vllm_xpu_kernels/flash_attn_interface.py, fused_moe_interface.py, csrc/*torch_bindings.cpp,
        csrc/xpu/onednn/fp8_gemm_w8a8.h, tests/ops/{topk,grouped_topk}_op.py
  VLLM  vllm-project/vllm: vllm/_xpu_ops.py, model_executor/kernels/linear/scaled_mm/xpu.py (fp8),
        model_executor/kernels/linear/mixed_precision/xpu.py (XPUwNa16), platforms/xpu.py
  IPEX  intel/intel-extension-for-pytorch (archived; last release 2.8.10+xpu): llm/modules/mha_fusion.py
        PagedAttention, its import-time torch version check; vLLM's former ipex_ops.py calls
  TORCH docs/vendor-apis.md section 7.1: torch-xpu-ops' default AOT targets
"""

from __future__ import annotations

import torch

from anyaccel.platforms.xpu import parse_capability


def _arches(*names: str):
    return frozenset(parse_capability(n) for n in names)


# --- architectures ------------------------------------------------------------------------------------------
# VXK csrc/utils.h is_xe2_arch: bmg_g21, bmg_g31, lnl_m, pvc; is_xe3_arch: ptl_h, ptl_u, wcl. The cutlass
# attention (attn_interface.cpp) and grouped GEMM run only there ("Only XE2/XE3 cutlass kernel is supported").
XE2_XE3 = _arches("pvc", "bmg", "lnl", "ptl")
# VXK CMakeLists.txt: SYCL_SUPPORTED_ARCHS intel_gpu_pvc;intel_gpu_bmg_g21;intel_gpu_bmg_g31 and AOT devices
# "pvc,bmg,bmg-g21-a0,bmg-g31-a0": the wheels hold device code for pvc and bmg only, so lnl (and ptl) pass
# the arch gate but find no kernels (vLLM issue #37828: Lunar Lake / Arc 140V unsupported).
PREBUILT = _arches("pvc", "bmg")
# TORCH: torch-xpu-ops builds for pvc,bmg,dg2,arl-h,mtl-h,lnl-m,ptl-h,ptl-u; IPEX's XPU wheels followed
# torch's list, and torch's own SDPA runs wherever torch does.
TORCH_XPU = _arches("dg2", "pvc", "mtl", "arl", "bmg", "lnl", "ptl")

# --- attention: flash_attn_varlen_func (VXK flash_api.cpp, fmha_xe2.cpp, paged_decode_utils.hpp) ------------
FA_DTYPES = frozenset({torch.float16, torch.bfloat16})  # "VLLM Kernel XPU only supports fp16 and bf16 type"
FA_KV_FP8 = frozenset({torch.float8_e4m3fn, torch.float8_e5m2})  # k/v may be fp8 with k/v_descale
FA_MAX_HEAD_DIM = 512  # "FMHA forward only supports head dimension at most 512" (prefill; decode up to 576)
FA_ROW_BYTES = 16  # CHECK_STRIDE_ALIGNMENT: the last dim of q/k/v is 16-byte aligned (Xe2 2D block I/O)
# Pages: "supported: 16, 32, or any positive multiple of 64".
FA_SMALL_BLOCKS = frozenset({16, 32})
FA_BLOCK_MULTIPLE = 64
# vLLM's XPU wrapper (_xpu_ops.py) passes neither softcap nor alibi, and mha_varlen_fwd hands softcap to
# neither the chunked-prefill nor the decode interface: a soft-cap would be ignored, not applied.
FA_SOFTCAP = False

# --- IPEX (IPEX mha_fusion.py; vLLM's ipex_ops) -------------------------------------------------------------
# flash_attn_varlen_func(out, q, k_cache, v_cache, cu_seqlens_q, cu_seqlens_kv, max_seqlen_q, max_seqlen_kv,
# scale, is_causal, block_tables, alibi_slopes, window_size_left, window_size_right, kv_cache_dtype, k_scale,
# v_scale, softcap): float32, float16 and bfloat16 (its tests run all three); NHD pages. Sinks and fp8
# caches are left to the other stacks (not confirmed for the XPU build).
IPEX_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})
IPEX_DISTRIBUTION = "intel-extension-for-pytorch"

# --- MoE (VXK fused_moe_interface.py, moe/torch_bindings.cpp) -----------------------------------------------
# XpuFusedMoe takes high-precision weights as [E, K, N] (4-bit ones as [E, N, K]); activations it dispatches
# to _C kernels: silu, gelu, gelu_tanh, swigluoai, relu2_no_mul, swiglustep, situ.
MOE_ACTIVATIONS = frozenset({"silu", "gelu"})  # the contract's two
MOE_DTYPES = frozenset({torch.float16, torch.bfloat16})
# grouped_topk: a group scores by the sum of its two best biased scores (the kernel always takes a bias);
# scoring_func 0 = scores already activated (softmax done by the caller), 1 = sigmoid inside.
GROUPED_SCORING = {"softmax": 0, "sigmoid": 1}

# --- fp8 GEMM: _xpu_C.fp8_gemm (VXK fp8_gemm_w8a8.h; VLLM scaled_mm/xpu.py) ---------------------------------
# A [M, K] fp8 with A_scale [1] (tensor) or [M, 1] (token) or [M, K/gk] (groups); B [K, N] fp8 with B_scale
# [1], [N] (channel) or [K/gk, N/gn] (blocks; "Mismatch group size in input and weight" unless the two K
# groupings agree). vLLM requires K % 128 == 0 for block weights and repeats scale rows to gn = gcd(N, 128),
# which oneDNN takes only as a multiple of 16. Output float32, float16 or bfloat16; fp8 e4m3fn or e5m2.
FP8_DTYPES = frozenset({"float8_e4m3fn", "float8_e5m2"})
FP8_OUT = frozenset({torch.float32, torch.float16, torch.bfloat16})
FP8_BLOCK = 128
FP8_MIN_GROUP_N = 16

# --- W4A16: _xpu_C.int4_gemm_w4a16 (VLLM mixed_precision/xpu.py XPUwNa16) -----------------------------------
# bf16/fp16 activations; uint4b8 (symmetric, zero point 8) or uint4 with zero points; group size, K and N
# multiples of 32; B is GPTQ's [K/8, N] int32 read column-major, scales [K/G, N], g_idx [K] (act-order).
W4_DTYPES = frozenset({torch.float16, torch.bfloat16})
W4_ALIGN = 32
W4_SYMMETRIC_ZERO = 8
