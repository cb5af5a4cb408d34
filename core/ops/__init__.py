"""The op contracts. Each file defines one family (mx.py: the microscaling quant ops; a8.py: the
group-quantized GEMMs with int8 activations); CORE_OPS lists every op anyaccel itself defines."""

from __future__ import annotations

from . import a8, activation, attention, comm, linear, moe, mx, norm, quant, rope
from .base import ContractError, OpDef

CORE_OPS: tuple[OpDef, ...] = (
    attention.PREFILL,
    attention.DECODE,
    attention.WRITE_KV,
    norm.RMS_NORM,
    norm.ADD_RMS_NORM,
    rope.APPLY,
    activation.SILU_AND_MUL,
    activation.GELU_AND_MUL,
    linear.GEMM,
    moe.TOPK,
    moe.EXPERTS,
    quant.QUANTIZE_FP8,
    quant.QUANTIZE_INT8,
    quant.FP8_GEMM,
    quant.INT8_GEMM,
    quant.W4A16_GEMM,
    quant.W8A16_GEMM,
    a8.W4A8_GEMM,
    a8.W8A8_GEMM,
    mx.QUANTIZE_MX,
    mx.MX_GEMM,
    comm.ALL_REDUCE,
    comm.ALL_GATHER,
    comm.REDUCE_SCATTER,
    comm.ALL_TO_ALL,
    comm.BROADCAST,
)

__all__ = ["CORE_OPS", "ContractError", "OpDef"]
