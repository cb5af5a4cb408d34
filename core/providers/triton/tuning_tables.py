"""Built-in tuning tables of the Triton kernels (format in tuning.py).

GPU entries are starting points sized for one CTA per row block on CUDA/ROCm-class devices; lists are
benchmarked once per device. Interpreter entries use the largest tiles, because the interpreter's cost is
per program instance and per loop iteration, not per element.
"""

from __future__ import annotations

from typing import Any

_ROW_KERNEL = {
    "interpreter": {"*": {"*": {"ROWS": 64, "BLOCK_H": 8192}}},
    "*": {"*": {"*": {"ROWS": 1, "BLOCK_H": 4096, "num_warps": 8}}},
}

_TOKEN_KERNEL = {
    "interpreter": {"*": {"*": {"TOKENS": 64}}},
    "*": {"*": {"*": {"TOKENS": 4, "num_warps": 4}}},
}
_GATED_KERNEL = {
    "interpreter": {"*": {"*": {"ROWS": 64, "BLOCK_I": 16384}}},
    "*": {"*": {"*": {"ROWS": 1, "BLOCK_I": 1024, "num_warps": 4}}},
}

_WRITE_KV = {
    "interpreter": {"*": {"*": {"TOKENS": 64}}},
    "*": {"*": {"*": {"TOKENS": 4, "num_warps": 4}}},
}
# TARGET_PROGRAMS: split programs wanted to fill the device (about 2 per SM/CU of an H100/MI300-class part)
_DECODE = {
    "interpreter": {
        "*": {"*": {"BLOCK_N": 256, "MIN_SPLIT": 1 << 30, "TARGET_PROGRAMS": 1, "MERGE_HEADS": 64}}
    },
    "*": {
        "*": {
            "*": {
                "BLOCK_N": 64,
                "MIN_SPLIT": 256,
                "TARGET_PROGRAMS": 264,
                "MERGE_HEADS": 8,
                "num_warps": 4,
                "num_stages": 2,
            }
        }
    },
}
# ROWS: query rows (new tokens x padded group heads) per program
_PREFILL = {
    "interpreter": {"*": {"*": {"ROWS": 128, "BLOCK_N": 128}}},
    "*": {"*": {"*": {"ROWS": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}}},
    "cuda": {
        "sm_80..sm_89": {"*": {"ROWS": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}},
        "sm_90..sm_121": {"*": {"ROWS": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3}},
    },
}

_QUANTIZE = {
    "interpreter": {"*": {"*": {"ROWS": 64, "BLOCK_K": 8192}}},
    "*": {"*": {"*": {"ROWS": 1, "BLOCK_K": 1024, "num_warps": 4}}},
}
# GEMM buckets are keyed by M (tokens): small M is weight-bandwidth bound (narrow M tiles, wide K),
# large M compute bound. Lists are benchmarked on the device once per bucket.
_GEMM_GPU = {
    "16": [
        {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128, "num_warps": 4, "num_stages": 4},
        {"BLOCK_M": 16, "BLOCK_N": 128, "BLOCK_K": 128, "num_warps": 4, "num_stages": 3},
    ],
    "128": [
        {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 128, "num_warps": 4, "num_stages": 3},
        {"BLOCK_M": 32, "BLOCK_N": 128, "BLOCK_K": 128, "num_warps": 4, "num_stages": 4},
    ],
    "*": [
        {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 128, "num_warps": 8, "num_stages": 3},
        {"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 128, "num_warps": 4, "num_stages": 4},
    ],
}
_GEMM = {
    "interpreter": {"*": {"*": {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 128}}},
    "*": {"*": _GEMM_GPU},
}
_W4A16 = {
    "interpreter": {"*": {"*": {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 128}}},
    "*": {
        "*": {
            "16": [
                {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 64, "num_warps": 4, "num_stages": 4},
                {"BLOCK_M": 16, "BLOCK_N": 128, "BLOCK_K": 32, "num_warps": 4, "num_stages": 4},
            ],
            "*": [
                {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "num_warps": 4, "num_stages": 3},
                {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "num_warps": 8, "num_stages": 3},
            ],
        }
    },
}

_TOPK = {
    "interpreter": {"*": {"*": {"ROWS": 64}}},
    "*": {"*": {"*": {"ROWS": 4, "num_warps": 4}}},
}

# fused_moe buckets are keyed by routed slots (tokens x top_k); BLOCK_K divides 128 (fp8 block scales)
_FUSED_MOE = {
    "interpreter": {"*": {"*": {"BLOCK_M": 32, "BLOCK_N": 128, "BLOCK_K": 128}}},
    "*": {
        "*": {
            "64": {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128, "num_warps": 4, "num_stages": 4},
            "1024": {"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 128, "num_warps": 4, "num_stages": 3},
            "*": {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64, "num_warps": 8, "num_stages": 3},
        }
    },
}

# quantize_mx: ROWS rows x NB scale blocks per program
_QUANTIZE_MX = {
    "interpreter": {"*": {"*": {"ROWS": 16, "NB": 64}}},
    "*": {"*": {"*": {"ROWS": 4, "NB": 8, "num_warps": 4}}},
}

TABLES: dict[str, dict[str, Any]] = {
    "triton.rms_norm": _ROW_KERNEL,
    "triton.add_rms_norm": _ROW_KERNEL,
    "triton.rope": _TOKEN_KERNEL,
    "triton.silu_and_mul": _GATED_KERNEL,
    "triton.gelu_and_mul": _GATED_KERNEL,
    "triton.write_kv": _WRITE_KV,
    "triton.paged_decode": _DECODE,
    "triton.varlen_prefill": _PREFILL,
    "triton.quantize_fp8": _QUANTIZE,
    "triton.quantize_int8": _QUANTIZE,
    "triton.fp8_gemm": _GEMM,
    "triton.int8_gemm": _GEMM,
    "triton.w4a16_gemm": _W4A16,
    "triton.w8a16_gemm": _W4A16,  # the same tiles: one int8 / int4 tile per K step, dequantized in registers
    "triton.quantize_mx": _QUANTIZE_MX,
    "triton.mx_gemm": _W4A16,  # one block-scaled weight tile per K step, dequantized in registers
    "triton.topk": _TOPK,
    "triton.fused_moe": _FUSED_MOE,
}
