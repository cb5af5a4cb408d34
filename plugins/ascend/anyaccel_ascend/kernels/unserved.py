"""Targets of the records that always decline (gates.UNSERVED says why): torch_npu has no call computing these
ops' contracts on Atlas A2/A3/310P. The records exist so that `anyaccel explain` shows the reason; their
`supports` never accepts, so nothing here runs. Signatures are the op contracts' (checked by
`anyaccel check --targets`)."""

from __future__ import annotations


def _unserved(op: str):
    raise NotImplementedError(f"{op}: not served by torch_npu on this SoC (see the npu record's reason)")


def quantize_fp8(x, fp8_dtype, granularity, scale=None):
    _unserved("quant.quantize_fp8")


def quantize_mx(x, fmt, global_scale=None):
    _unserved("quant.quantize_mx")


def mx_gemm(a, w, w_scale, out_dtype, a_scale=None, w_global_scale=None, a_global_scale=None, bias=None):
    _unserved("quant.mx_gemm")


def w8a8_gemm(x, qweight, scales, bias=None):
    _unserved("quant.w8a8_gemm")


def w4a8_gemm(x, qweight, scales, qzeros=None, g_idx=None, bias=None):
    _unserved("quant.w4a8_gemm")
