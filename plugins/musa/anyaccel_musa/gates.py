"""What torch_musa and MATE accept, as data, each with its source. The kernels' `supports` predicates
(kernels/supports.py) turn these into reasons, and the emulators (emulators/) raise on the same limits;
tests/test_gates.py checks every table.

Sources (read for facts only):
  MATE     MooreThreads/mate @ 3f58cc3: README.md (requirements), docs/flash_attention.md (the FA3 forward
           surface), mate/mha_interface.py, mate/jit/attention/fmha/fmha_fwd.py (argument checks),
           mate/deep_gemm.py and mate/gemm.py (fp8_gemm_nt, m_grouped_fp8_gemm_nt_contiguous), csrc/mubin/
           (kernel binaries are shipped for mp31 only)
  TM       MooreThreads/torch_musa @ 8b583b3: torch_musa/csrc/aten/ops/RMSNorm.cpp, SwiGlu.cpp, RoPE.cpp,
           torch_patches/aten_src_ATen_native_native_functions.yaml.patch (schemas),
           tests/unittest/operator/test_rope_apply.py, test_swish_glu.py (arch skips)
  VLLM     vllm-project/vllm vllm/utils/deep_gemm.py `should_use_deepgemm_for_fp8_linear`, which
           MooreThreads/vllm-musa's MUSADeepGemmFp8BlockScaledMMKernel applies
  VM       MooreThreads/vllm-musa: vllm_musa/platform.py (pymtml, fp8 from capability (3, 1)),
           fused_moe.py (the grouped-GEMM policy), fa_utils.py (block size 64)
  SGL      sgl-project/sglang PR #22039: the FA3 backend on MUSA only from capability 31
"""

from __future__ import annotations

import torch

from anyaccel.platforms.musa import mp

MP21, MP22, MP31 = mp(2, 1), mp(2, 2), mp(3, 1)

# --- MATE: where it runs ----------------------------------------------------------------------------------
# MATE README "Architecture: Pinghu (MP31)"; its kernel binaries live under csrc/mubin/mp31 only; SGL
# enables the FA3 backend only at capability >= 31 and falls back to Triton below.
MATE_ARCHES = frozenset({MP31})

# --- MATE attention: flash_attn_varlen_func / flash_attn_with_kvcache ---------------------------------------
# docs/flash_attention.md: bf16 and fp16 only ("standard FMHA fp8 is not supported"), any head dim <= 512,
# page sizes 1, 16, 64 "and arbitrary", paged KV [num_blocks, page_size, Hkv, D] (NHD), causal, local
# (window), soft-cap, learnable sink. fmha_fwd.py: q, k, v of one dtype; page_table int32 with a contiguous
# last dim; seqused_k / cu_seqlens int32; learnable_sink bfloat16 of shape [Hq]; Hq % Hkv == 0.
ATTN_DTYPES = frozenset({torch.float16, torch.bfloat16})
ATTN_MAX_HEAD_DIM = 512
ATTN_LAYOUT = "NHD"
SINK_DTYPE = torch.bfloat16  # also the only query dtype served with sinks (a bf16 sink in fp16 attention
# is off by more than fp16's tolerance: the conformance kit's sink cases show it)
# fmha_fwd.py: with a learnable sink MATE drops the scheduler metadata and splitting ("FIXME: bug
# learnable_sink + split"), so the plan prepares none for layers with sinks.
SINKS_TAKE_METADATA = False
# VM fa_utils.py allocates 64-token pages; MATE reads any size, so no block size is imposed.
VLLM_MUSA_BLOCK_SIZE = 64

# --- MATE fp8 GEMM: deep_gemm.fp8_gemm_nt -> gemm_fp8_nt_groupwise ----------------------------------------
# mate/deep_gemm.py: `assert c is None`; gemm.py: a [M, K], b [N, K] fp8 (e4m3 / e5m2), contiguous, K-major;
# float32 scales, granularity (1, 128, 128) by default (a [M, K/128], b [N/128, K/128]); out bf16 or fp16.
FP8_GEMM_INPUTS = frozenset({torch.float8_e4m3fn, torch.float8_e5m2})
FP8_GEMM_OUT = frozenset({torch.bfloat16, torch.float16})
FP8_BLOCK = 128
# VLLM should_use_deepgemm_for_fp8_linear: N % 64 == 0 and K % 128 == 0 (N_MULTIPLE, K_MULTIPLE).
FP8_GEMM_N_MULTIPLE = 64
FP8_GEMM_K_MULTIPLE = 128

# --- MATE grouped fp8 GEMM: deep_gemm.m_grouped_fp8_gemm_nt_contiguous -> ragged_m_moe_gemm_8bit --------
# mate/deep_gemm.py: UE8M0 scale casts are not supported (disable_ue8m0_cast must stay True); gemm.py: a
# [M, K] fp8 with [M, K/128] scales, b [E, N, K] fp8 with [E, N/128, K/128] scales, m_indices [M] int32 (the
# expert of each row, -1 for padding rows), rows of one expert contiguous and aligned to alignment_m (128 or
# 256), out [M, N] fp16 or bf16.
GROUPED_ALIGNMENTS = frozenset({128, 256})
GROUPED_ALIGNMENT = 128
GROUPED_OUT = frozenset({torch.bfloat16, torch.float16})
# VM fused_moe.py takes the grouped GEMM for fp8 128x128 blocks with bf16 activations, e4m3 weights,
# N % 256 == 0 and K % 128 == 0 (N, K of each of the two GEMMs), and Triton's fused MoE otherwise.
GROUPED_DTYPES = frozenset({torch.bfloat16})
GROUPED_FP8 = "float8_e4m3fn"
GROUPED_N_MULTIPLE = 256
GROUPED_K_MULTIPLE = 128

# --- torch_musa fused ops -----------------------------------------------------------------------------------
# TM RMSNorm.cpp: input float32, float16 or bfloat16, the weight in the input's dtype; no arch restriction
# in its tests. Schema: _fused_rmsnorm_forward(input, normalized_shape, eps, weight=None) -> (output, invvar).
RMSNORM_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})
RMSNORM_ARCHES = frozenset({MP21, MP22, MP31})
# TM SwiGlu.cpp: float32, float16, bfloat16 (muDNN >= 2800); test_swish_glu.py runs only from arch 22.
# Schema: _fused_swiglu_forward(input) -> silu(input[..., :d]) * input[..., d:].
SWIGLU_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})
SWIGLU_ARCHES = frozenset({MP22, MP31})
# TM RoPE.cpp: float32, float16, bfloat16 inputs (muDNN >= 2800); test_rope_apply.py runs only from arch 22
# and only in the rotate-half form (rotary_interleaved=False); freq_cis holds rotation ANGLES [S, rot_dim]
# (cos and sin are taken inside), the input SBHD (batch_first=False), channels past rot_dim pass through.
ROPE_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})
ROPE_ARCHES = frozenset({MP22, MP31})
