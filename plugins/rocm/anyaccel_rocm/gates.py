"""What AITER builds and dispatches for, copied from AITER's own gates (ROCm/aiter at commit e404860, the
file named on each table). Hardware facts (MFMA, the fp8 encoding) come from platforms/rocm.py's FEATURES;
these tables change when AITER changes. The emulators (emulators/aiter/) raise on the same tables, and
tests/test_gates.py checks each one.
"""

from __future__ import annotations

import torch

from anyaccel.platforms.rocm import parse_capability

AITER_COMMIT = "e4048607a535ace3a2b51ded31b1c8c2d45c0879"

# aiter/utility/dtypes.py defaultDtypes: the fp8 dtype AITER computes in, per gfx (resolved at import).
FP8_BY_GFX = {"gfx942": torch.float8_e4m3fnuz, "gfx950": torch.float8_e4m3fn}

# The gfx9 targets AITER's hand-written assembly (hsa/<gfx>/) ships for and the engines run it on: vLLM's
# `is_aiter_found_and_supported` needs CDNA3 or later; gfx942 and gfx950 are the targets with hsa/ trees.
AITER_GFX = frozenset(parse_capability(g) for g in ("gfx942", "gfx950"))

# --- prefill: aiter/ops/mha.py _flash_attn_varlen_forward, can_impl_fmha_v3_fwd (line 2835) ----------
# The hand-written v3 kernel runs for gfx942/gfx950, head dims 128 (or 192 for q/k with 128 for v), bf16,
# no sliding window, no soft-cap, Hq % Hkv == 0; everything else goes to the CK tile kernel
# (mha_varlen_fwd). The gate does not mention sink_ptr, so sinks are not trusted on the v3 path.
V3_GFX = frozenset({"gfx942", "gfx950"})
V3_HEAD_DIMS = frozenset({128})  # 192/128 needs distinct q and v head dims, which the contract has not
# CK tile fmha (csrc/py_itfs_ck/mha_varlen_fwd_kernels.cu): head dims at most 256 and multiples of 8.
CK_MAX_HEAD_DIM = 256


def prefill_engine(gfx: str, dtype: torch.dtype, head_dim: int, window: int, softcap: float) -> str:
    """ "asm v3" or "ck": which of its kernels AITER's flash_attn_varlen_func takes for these arguments."""
    v3 = (
        gfx in V3_GFX
        and head_dim in V3_HEAD_DIMS
        and dtype == torch.bfloat16
        and window <= 0
        and softcap == 0.0
    )
    return "asm v3" if v3 else "ck"


# --- paged decode, HIP kernel: csrc/cpp_itfs/pa/pa_v1.py (paged_attention_v1) ------------------------
# Query fp16/bf16 only ("Unsupported data type"); kv_cache_dtype "auto" (same as the query) or "fp8"
# (the cache holds AITER's fp8 for the gfx). op_tests/test_pa_v1.py tests head sizes 64/128 and block
# sizes 1/16/32 (256 % block_size == 0 is asserted there); those are the ones claimed.
PA_V1_HEAD_DIMS = frozenset({64, 128})
PA_V1_BLOCK_SIZES = frozenset({16, 32})
PA_V1_PARTITION = 256

# --- paged decode, assembly: csrc/py_itfs_cu/asm_pa.cu pa_fwd + hsa/<gfx>/pa/pa_asm.csv -----------------
# head_size must be 128 (AITER_CHECK); softmax scale fixed at 1/sqrt(128) (sclg2e); no window, soft-cap or
# sinks. The kernel is looked up in the csv by (q type, kv type, gqa, mtp, msk, hp, block size), where the
# GQA ratio is tried as given and rounded up to a multiple of 8 (get_heuristic_kernel); rows for a plain
# decode (mtp 0, msk 0, ps 0, 16-token blocks) with high_precision 1 (which matches every hp):
# 8-bit caches (the fp8 rows; int8 is not a contract cache dtype) pack 16 elements (x = 16 // itemsize:
# layouts.AITER_PA_ASM_8BIT) and take per-token scales K_QScale/V_QScale, float32 [num_blocks, Hkv,
# block_size], of which pa_fwd passes only the addresses (args.ptr_KQ / ptr_VQ); op_tests/test_pa.py
# (KV_8BIT_PER_TENSOR) serves a per-tensor scale by filling that tensor with it.
PA_ASM_HEAD_DIM = 128
PA_ASM_BLOCK_SIZE = 16
_ROWS_16BIT = {("bf16", "bf16", 8), ("bf16", "bf16", 16), ("fp16", "fp16", 8), ("fp16", "fp16", 16)}
_ROWS_FP8 = {("bf16", "fp8", 8), ("bf16", "fp8", 16), ("fp16", "fp8", 8), ("fp16", "fp8", 16)}
_ROWS_INT8 = {("bf16", "int8", 8), ("bf16", "int8", 16), ("fp16", "int8", 8), ("fp16", "int8", 16)}
PA_ASM_ROWS: dict[str, frozenset[tuple[str, str, int]]] = {
    "gfx942": frozenset(_ROWS_16BIT | _ROWS_FP8 | _ROWS_INT8),
    "gfx950": frozenset(_ROWS_16BIT | _ROWS_FP8 | _ROWS_INT8),
}


def pa_asm_kernel(gfx: str, q_type: str, kv_type: str, gqa: int) -> tuple[str, str, int] | None:
    """The csv row pa_fwd would launch (get_heuristic_kernel's lookup), or None ("cannot get heuristic
    kernel!")."""
    rows = PA_ASM_ROWS.get(gfx, frozenset())
    for g in (gqa, (gqa + 7) // 8 * 8):
        if (q_type, kv_type, g) in rows:
            return (q_type, kv_type, g)
    return None


# --- MoE: aiter/fused_moe.py, aiter/ops/shuffle.py, op_tests/test_moe_2stage.py ----------------------
# shuffle_weight(w, (16, 16)) asserts rows % 16 == 0 and cols % 32 == 0 (BK = 2 * 16).
SHUFFLE_ROWS, SHUFFLE_COLS = 16, 32
# per_128x128 weights are quantized in whole 128x128 tiles and activations per 1x128 group
# (test_moe_2stage.py views them as [E, N/128, 128, K/128, 128] and [T, -1, 128]).
MOE_BLOCK = 128

# --- fp8 GEMM: aiter/ops/gemm_op_a8w8.py ---------------------------------------------------------------
# gemm_a8w8 / gemm_a8w8_blockscale write bf16 or fp16 only; blockscale tiles are 1x128 (x) by 128x128 (w).
GEMM_OUT_DTYPES = frozenset({torch.bfloat16, torch.float16})
GEMM_BLOCK = 128

# --- custom all-reduce: aiter/dist/device_communicators/custom_all_reduce.py -----------------------------
# CustomAllreduce._SUPPORTED_WORLD_SIZES = [2, 4, 6, 8]; it attaches to a non-NCCL group whose ranks share
# one node (IPC handles); inputs must be a multiple of 16 bytes and at most AITER_CUSTOM_AR_MAX_SIZE
# (default 8192 * 8192 bytes = 64 MiB), else `custom_all_reduce` returns None and RCCL must run.
CUSTOM_AR_WORLD_SIZES = frozenset({2, 4, 6, 8})
CUSTOM_AR_MAX_BYTES = 8192 * 8192
CUSTOM_AR_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})
# ROCm/aiter#4855: silently wrong results on gfx942 with 8 ranks. Excluded until a fixed release is known.
CUSTOM_AR_BROKEN = frozenset({("gfx942", 8)})

# --- quick all-reduce: aiter/dist/device_communicators/quick_all_reduce.py, csrc/kernels/quick_all_reduce.cu,
# csrc/include/quick_all_reduce{.cuh,_base.h} ------------------------------------------------------------
# QuickAllReduce: a two-shot all-reduce through IPC buffers on one node, for gfx94*/gfx95* only
# (qr_rocm_arch_available matches "gfx94"/"gfx95" in gcnArchName), world sizes [2, 4, 8]
# (_SUPPORTED_WORLD_SIZES; init_custom_qr rejects 6 and odd counts), float16 and bfloat16 only
# (_SUPPORTED_DTYPES; qr_all_reduce raises for anything else), inputs a multiple of 16 bytes and
# (weakly) contiguous. AITER keeps it off unless AITER_QUICK_REDUCE_QUANTIZATION names a level, read once
# when the module is imported and again when a communicator is built.
QR_GFX_PREFIXES = ("gfx94", "gfx95")
QR_WORLD_SIZES = frozenset({2, 4, 8})
QR_DTYPES = frozenset({torch.float16, torch.bfloat16})
QR_ALIGN_BYTES = 16
# qr_max_size(): 2 GiB unless AITER_QUICK_REDUCE_MAX_SIZE_BYTES_MB says less (the buffer is twice that).
QR_MAX_BYTES = 2**31
# QuickReduceRegime (ids shared with csrc/include/quick_all_reduce.cuh QuickReduceQuantLevel).
QR_LEVELS = {"FP": 0, "FP8": 1, "INT6": 2, "INT4": 3, "INT3": 4, "NONE": 5}
# What each level sends between ranks (the codecs of quick_all_reduce.cuh). FP sends the 16-bit values
# and sums them in the dtype in rank order (packed_assign_add), so the result is the exact sum up to one
# rounding per partial sum: the contract. Every other level quantizes each 32-element block twice (the
# inputs before the reduce-scatter, the partial sums before the all-gather) with a 16-bit scale of
# amax/240 (FP8: 3 mantissa bits), amax/32 (INT6, codes -32..31), amax/8 (INT4, -8..7) or amax/4 (INT3,
# -4..3), an error of up to half a step per element: 1/16 of a block's amax for INT4, 1/64 for INT6, far
# past the contract's reduction tolerance. anyaccel runs FP only; the quantized levels are not offered.
QR_LEVEL = "FP"
QR_QUANTIZED_LEVELS = ("FP8", "INT6", "INT4", "INT3")
QR_INT3_WORLD_SIZES = frozenset({2})  # INT3 is built for two ranks only
# _QR_MIN_SIZE at the FP level (index 0 of each list): below these bytes QuickAllReduce declines
# (should_quick_allreduce is False) because custom all-reduce or RCCL is faster there (AITER's kernel
# tests). bfloat16 keys are used when bf16 is not cast to fp16.
MB = 1024 * 1024
QR_MIN_BYTES = {
    (torch.float16, 2): 1 * MB,
    (torch.float16, 4): 1 * MB,
    (torch.float16, 8): 16 * MB,
    (torch.bfloat16, 2): 2 * MB,
    (torch.bfloat16, 4): 8 * MB,
    (torch.bfloat16, 8): 16 * MB,
}
# AITER_QUICK_REDUCE_CAST_BF16_TO_FP16 (default "1") converts bf16 inputs to fp16 (round to nearest),
# sums in fp16 and converts back: values beyond fp16's 65504 overflow and those under 2**-14 lose bits,
# which the contract's bf16 sum does not allow. anyaccel sets it to "0": bf16 sums in bf16.
QR_CAST_BF16_TO_FP16 = False
# QuickAllReduce reads both when its module is imported and when a communicator is built: the kernel sets
# them for those two steps only, so the FP level runs whatever the process asks AITER's other users for.
QR_ENV = {
    "AITER_QUICK_REDUCE_QUANTIZATION": QR_LEVEL,
    "AITER_QUICK_REDUCE_CAST_BF16_TO_FP16": "1" if QR_CAST_BF16_TO_FP16 else "0",
}
# Ranking (vLLM's cuda_communicator.all_reduce: quick reduce first wherever it accepts the input, then the
# custom all-reduce, then RCCL): aiter.quick_all_reduce outranks aiter.custom_all_reduce for the size
# classes that reach its minimum, and hands smaller inputs of those classes to the custom all-reduce where
# that one serves the spec, else to RCCL.


# --- microscaling (quant.quantize_mx, quant.mx_gemm, moe.experts mxfp8/mxfp4/nvfp4) at AITER_COMMIT -------
# What AITER offers and why none of it is wired: each op keeps Triton (or the reference) on gfx950, and the
# reason is kept here, with its source, until AITER (or the contract) changes. gfx942 has no block-scaled
# MFMA at all (platforms/rocm.py: mx_scaled_mfma is gfx950's), and AITER builds its MX paths for gfx950.
MX_GFX = frozenset({"gfx950"})
MX_NOT_WIRED: dict[str, tuple[str, ...]] = {
    "quant.quantize_mx": (
        "aiter/ops/triton/quant/quant.py dynamic_mxfp4_quant / dynamic_mxfp8_quant (_mxfp4_quant_op, "
        "_mxfp8_quant_op): the e8m0 exponent is floor(log2(amax rounded up at mantissa 1.75)) - emax "
        "(AITER's EVEN mode, +0x200000 on the float bits), not OCP's floor(log2(amax)) - emax that the "
        "contract fixes: blocks whose amax has a mantissa >= 1.75 get twice the scale",
        "nvfp4: no e4m3-scaled quantizer (CDNA's MX instructions take e8m0 scales only)",
    ),
    "quant.mx_gemm": (
        "aiter/ops/gemm_op_a4w4.py gemm_a4w4 and aiter/ops/triton/gemm/basic/gemm_afp4wfp4.py: "
        "mxfp4 x mxfp4, a pair the contract does not have (GEMM_COMBOS)",
        "aiter/ops/triton/gemm/basic/gemm_a8wfp4.py: fp8 activations with one fp32 scale per row, not the "
        "contract's per-1x32 e8m0 mxfp8 activations",
        "aiter/ops/triton/gemm/basic/gemm_a16wfp4.py: 'quantized to MXFP4 on-the-fly' - bf16 activations "
        "lose ~11% RMS, past the contract's GEMM tolerance",
        "mxfp8 x mxfp8: only for gfx1250 at this commit "
        "(aiter/ops/flydsl/mxfp8_128_bpreshuffle_gemm_gfx1250.py)",
    ),
    "moe.experts": (
        "aiter/fused_moe.py fused_moe, QuantType.per_1x32 with fp4x2 weights: activations are quantized to "
        "MXFP4 for silu at any token count and for Swiglu from GPTOSS_SWIGLU_MXFP4_BF16_BOUND (256) tokens; "
        "MXFP4 activations cost ~11% RMS per GEMM, past the 10% the contract's fp8 rule allows",
        "the bf16-activation (a16w4) path under 256 tokens reads shuffle_weight_a16w4 / shuffle_scale_a16w4 "
        "layouts with H a multiple of 128 through FlyDSL/cktile kernels whose shape limits are not published",
        "mxfp8 weights (per_1x32, fp8): FlyDSL-only kernels (is_flydsl_available), not yet wired",
    ),
}
# The bind-time reasons fused_moe gives for block-scaled experts (the table above, shortened).
MX_EXPERTS_DECLINED = {
    "mxfp4": "quant mxfp4: AITER's fused_moe quantizes activations to MXFP4 (silu always, Swiglu from 256 "
    "tokens), ~11% RMS per GEMM, past the contract's 10%",
    "mxfp8": "quant mxfp8: AITER's per_1x32 fp8 experts run on FlyDSL kernels only; not wired",
    "nvfp4": "quant nvfp4: CDNA's block-scaled MFMA takes e8m0 scales only; AITER has no NVFP4 MoE",
}
