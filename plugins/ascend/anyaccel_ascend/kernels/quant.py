"""Quantized GEMMs through torch_npu.

quant.quantize_int8   npu_dynamic_quant(x) -> (int8 rows, per-token scale); the scale of an all-zero row is
                      raised to the contract's floor (1e-12 / 127) so dequantization stays finite.
quant.int8_gemm       W8A8 dynamic: npu_quant_matmul(a, b [K, N], b_scale [N], pertoken_scale=a_scale [M],
                      bias, output_dtype); `prepare_int8` transposes the weight and flattens its scale once.
quant.w8a16_gemm      npu_weight_quant_batchmatmul(x, w [K, N] int8, antiquant_scale [K/G, N],
                      antiquant_group_size=G); `prepare_w8` lays the weight and scales out once.
quant.w4a16_gemm      GPTQ and AWQ checkpoints: `prepare_w4` unpacks them once, recentres the 4-bit values
                      to signed int4 (q - 8), packs them with npu_convert_weight_to_int4pack and turns the
                      zero points into antiquant offsets (8 - z), so that (q - z) * s == (w4 + offset) * s;
                      each call is one npu_weight_quant_batchmatmul.
"""

from __future__ import annotations

import torch
import torch_npu

from anyaccel.schemes.packing import awq_unpack, gptq_unpack

ZERO_ROW_SCALE = 1e-12 / 127


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q, scale = torch_npu.npu_dynamic_quant(x)
    return q, scale.clamp_min(ZERO_ROW_SCALE).unsqueeze(-1)


def prepare_int8(spec, weights: dict) -> dict:
    return weights | {
        "b": weights["b"].transpose(0, 1).contiguous(),
        "b_scale": weights["b_scale"].reshape(-1).float().contiguous(),
    }


def int8_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
    return torch_npu.npu_quant_matmul(
        a, b, b_scale, pertoken_scale=a_scale.reshape(-1).float(), bias=bias, output_dtype=out_dtype
    )


def prepare_w8(spec, weights: dict) -> dict:
    return weights | {
        "qweight": weights["qweight"].transpose(0, 1).contiguous(),
        "scales": weights["scales"].transpose(0, 1).to(spec.dtype).contiguous(),
    }


def w8a16_gemm(x, qweight, scales, bias=None):
    group = x.shape[1] // scales.shape[0]
    return torch_npu.npu_weight_quant_batchmatmul(x, qweight, scales, bias=bias, antiquant_group_size=group)


def prepare_w4(spec, weights: dict) -> dict:
    unpack = gptq_unpack if spec.format == "gptq" else awq_unpack
    q, zeros = unpack(weights["qweight"], weights["qzeros"])  # q [N, K] in 0..15, zeros [K/G, N] or None
    packed = torch_npu.npu_convert_weight_to_int4pack((q.transpose(0, 1) - 8).to(torch.int32).contiguous())
    offset = None if zeros is None else (8 - zeros).to(spec.dtype).contiguous()
    return weights | {
        "qweight": packed,
        "scales": weights["scales"].to(spec.dtype).contiguous(),
        "qzeros": offset,
    }


def w4a16_gemm(x, qweight, scales, qzeros=None, g_idx=None, bias=None):
    group = x.shape[1] // scales.shape[0]
    return torch_npu.npu_weight_quant_batchmatmul(
        x, qweight, scales, antiquant_offset=qzeros, bias=bias, antiquant_group_size=group
    )
