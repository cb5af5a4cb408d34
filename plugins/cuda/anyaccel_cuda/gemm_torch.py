"""quant.fp8_gemm through torch._scaled_mm and quant.int8_gemm through torch._int_mm.

_scaled_mm takes b column-major: b.t() of our [N, K] weight is exactly that, no copy. Scales:
    tensor:  a_scale [1], b_scale [1] as they are
    channel: a_scale [M, 1]; b_scale [N, 1] -> [1, N] (prepare, once); bf16 output only (row-wise)
    block:   a_scale [M, K/128], b_scale [N/128, K/128] (sm_90 only, bf16 output)
The bias is fused except with a float32 output, which _scaled_mm refuses; it is added afterwards there.

_int_mm wants more than 16 rows: smaller batches are padded with zero rows (the padding's products are
dropped); the int32 result is scaled per token and channel in fp32 and rounded once.
"""

from __future__ import annotations

import importlib

import torch

from anyaccel.ops.quant import GemmSpec


def _ops():
    return importlib.import_module("anyaccel_cuda.torch_ops")  # emulated on an emulated platform


def prepare_scaled(spec: GemmSpec, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    """Row-wise scaling reads b's scales as a [1, N] row."""
    scale = weights.get("b_scale")
    if spec.scales == "channel" and scale is not None:
        return {**weights, "b_scale": scale.reshape(1, -1).contiguous()}
    return weights


def fp8_gemm(spec: GemmSpec, platform):
    scaled_mm = _ops().scaled_mm
    dtype = spec.out_dtype
    fuse_bias = dtype != torch.float32

    def scaled_mm_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
        if fuse_bias or bias is None:
            return scaled_mm(a, b.t(), a_scale, b_scale, bias=bias, out_dtype=dtype)
        return scaled_mm(a, b.t(), a_scale, b_scale, out_dtype=dtype) + bias

    return scaled_mm_gemm


def int8_gemm(spec: GemmSpec, platform):
    int_mm = _ops().int_mm
    dtype = spec.out_dtype

    def int_mm_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
        m = a.shape[0]
        padded = a if m > 16 else torch.cat([a, a.new_zeros(17 - m, a.shape[1])])
        acc = int_mm(padded, b.t())[:m]
        out = acc.float() * a_scale * b_scale.reshape(1, -1)
        if bias is not None:
            out = out + bias.float()
        return out.to(dtype)

    return int_mm_gemm
