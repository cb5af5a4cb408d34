"""quant.quantize_mx and quant.mx_gemm: microscaling (block-scaled floating-point) activations and GEMMs.

The formats (mxfp8, mxfp4, nvfp4), their packing, scale types and rounding rules are defined once in
anyaccel.ops.microscaling; docs/quantization.md documents them with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_tensor
from .common import preferred_dtype
from .microscaling import FORMATS, check_k, get_format

ACT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
QUANTIZE_FORMATS = ("mxfp8", "mxfp4", "nvfp4")
# (activation format, weight format) pairs mx_gemm serves: "none" is bf16/fp16/fp32 activations. Quantized
# activations pair as the block-scaled tensor-core instructions do: mxfp8 with mxfp8 or mxfp4 weights
# (OCP MX kinds, NVIDIA's tcgen05 "mxf8f6f4"), nvfp4 with nvfp4 weights ("mxf4nvf4" with e4m3 scales).
GEMM_COMBOS = (
    ("none", "mxfp8"),
    ("none", "mxfp4"),
    ("none", "nvfp4"),
    ("mxfp8", "mxfp8"),
    ("mxfp8", "mxfp4"),
    ("nvfp4", "nvfp4"),
)


@dataclass(frozen=True)
class MXQuantSpec:
    """Spec of quantize_mx: input dtype, target format and K (a multiple of the format's block)."""

    dtype: torch.dtype = torch.float32
    format: str = "mxfp8"
    k: int = 4096


@dataclass(frozen=True)
class MXGemmSpec:
    """Spec of mx_gemm. dtype: the output dtype, and the activations' when act_format is "none";
    weight_format: "mxfp8" | "mxfp4" | "nvfp4"; act_format: "none" | "mxfp8" | "nvfp4" (see GEMM_COMBOS);
    n, k: the weight's [N, K] in values (K a multiple of the weight's block)."""

    dtype: torch.dtype = torch.bfloat16
    weight_format: str = "mxfp4"
    act_format: str = "none"
    n: int = 4096
    k: int = 4096
    has_bias: bool = False


def quantize_mx(
    x: torch.Tensor, fmt: str, global_scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic block quantization of activations: x [M, K] in spec.dtype -> (q, scales).

    fmt "mxfp8": q float8_e4m3fn [M, K], scales uint8 e8m0 [M, K/32]
    fmt "mxfp4": q uint8 [M, K/2] (two e2m1 per byte, element 2i in the low nibble), scales e8m0 [M, K/32]
    fmt "nvfp4": q uint8 [M, K/2] as mxfp4, scales float8_e4m3fn [M, K/16]; global_scale float32 [1] is
                 an input (static, like ModelOpt's input_scale): real = e2m1 * scale * global_scale
    K must be a multiple of the block (32; 16 for nvfp4). Scales and rounding follow
    anyaccel.ops.microscaling: OCP's shared exponent floor(log2(amax)) - emax_elem for e8m0 scales,
    e4m3(amax / (6 * global)) for nvfp4; elements round to nearest even and saturate at the largest finite
    value. The mx formats take no global_scale.
    """
    raise NotImplementedError


def mx_gemm(
    a: torch.Tensor,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    out_dtype: torch.dtype,
    a_scale: torch.Tensor | None = None,
    w_global_scale: torch.Tensor | None = None,
    a_global_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """out [M, N] = dequant(a) @ dequant(w).T + bias, accumulated in float32, rounded to out_dtype.

    w: the weight [N, K] in spec.weight_format, as nn.Linear (out, in):
      mxfp8: w float8_e4m3fn [N, K], w_scale uint8 e8m0 [N, K/32]
      mxfp4: w uint8 [N, K/2] (element 2i in the low nibble), w_scale uint8 e8m0 [N, K/32]
      nvfp4: w uint8 [N, K/2], w_scale float8_e4m3fn [N, K/16], w_global_scale float32 [1]
    a: spec.act_format "none": [M, K] in spec.dtype (bf16/fp16/fp32), a_scale None;
       "mxfp8": float8_e4m3fn [M, K] with a_scale e8m0 [M, K/32] (from quant.quantize_mx);
       "nvfp4": uint8 [M, K/2] with a_scale e4m3 [M, K/16] and a_global_scale float32 [1].
    Pairs served (GEMM_COMBOS): bf16/fp16/fp32 activations with any weight format, mxfp8 activations with
    mxfp8 or mxfp4 weights, nvfp4 activations with nvfp4 weights.
    out_dtype equals spec.dtype; bias [N] in out_dtype or None. Scales are in the plain row-major layout;
    a kernel that reads a swizzled one makes it in its prepare (anyaccel.ops.mx_swizzle).
    """
    raise NotImplementedError


def _fake_quantize_mx(x, fmt, global_scale=None):
    f = FORMATS[fmt]
    m, k = x.shape
    q = x.new_empty((m, f.element_cols(k)), dtype=f.element_dtype)
    return q, x.new_empty((m, f.scale_cols(k)), dtype=f.scale_dtype)


def _fake_mx_gemm(
    a, w, w_scale, out_dtype, a_scale=None, w_global_scale=None, a_global_scale=None, bias=None
):
    return a.new_empty((a.shape[0], w.shape[0]), dtype=out_dtype)


def _check_quantize_spec(spec: MXQuantSpec) -> None:
    op = "quant.quantize_mx"
    expect(op, spec.dtype in ACT_DTYPES, f"dtype must be one of float32/float16/bfloat16, got {spec.dtype}")
    check_k(op, get_format(op, spec.format), spec.k)


def _check_gemm_spec(spec: MXGemmSpec) -> None:
    op = "quant.mx_gemm"
    expect(op, spec.dtype in ACT_DTYPES, f"dtype must be one of float32/float16/bfloat16, got {spec.dtype}")
    fmt = get_format(op, spec.weight_format)
    expect(
        op,
        (spec.act_format, spec.weight_format) in GEMM_COMBOS,
        f"activations {spec.act_format!r} with weights {spec.weight_format!r} is not one of {GEMM_COMBOS}",
    )
    check_k(op, fmt, spec.k)
    expect(op, spec.n > 0, f"N must be positive, got {spec.n}")


def _check_quantize(spec: MXQuantSpec, x, fmt, global_scale=None) -> None:
    op = "quant.quantize_mx"
    expect(op, fmt == spec.format, f"fmt {fmt!r} differs from the bound {spec.format!r}")
    expect_tensor(op, "x", x, dims=2, dtype=spec.dtype, shape=(None, spec.k))
    f = FORMATS[fmt]
    if f.has_global:
        expect(op, global_scale is not None, "nvfp4 needs global_scale (float32 [1])")
        expect_tensor(op, "global_scale", global_scale, shape=(1,), dtype=torch.float32)
    else:
        expect(op, global_scale is None, f"{fmt} takes no global_scale")


def _check_operand(op: str, who: str, fmt_name: str, q, scale, glob, rows: int | None, k: int) -> None:
    f = FORMATS[fmt_name]
    expect_tensor(op, who, q, shape=(rows, f.element_cols(k)), dtype=f.element_dtype)
    expect(op, scale is not None, f"{who}_scale is required for {fmt_name}")
    expect_tensor(op, f"{who}_scale", scale, shape=(q.shape[0], f.scale_cols(k)), dtype=f.scale_dtype)
    if f.has_global:
        expect(op, glob is not None, f"{who}_global_scale is required for {fmt_name}")
        expect_tensor(op, f"{who}_global_scale", glob, shape=(1,), dtype=torch.float32)
    else:
        expect(op, glob is None, f"{fmt_name} takes no {who}_global_scale")


def _check_gemm(
    spec: MXGemmSpec,
    a,
    w,
    w_scale,
    out_dtype,
    a_scale=None,
    w_global_scale=None,
    a_global_scale=None,
    bias=None,
) -> None:
    op = "quant.mx_gemm"
    expect(op, out_dtype == spec.dtype, f"out_dtype {out_dtype} differs from the bound {spec.dtype}")
    _check_operand(op, "w", spec.weight_format, w, w_scale, w_global_scale, spec.n, spec.k)
    if spec.act_format == "none":
        expect_tensor(op, "a", a, dims=2, dtype=spec.dtype, shape=(None, spec.k))
        expect(op, a_scale is None and a_global_scale is None, "unquantized activations take no a_scale")
    else:
        expect_tensor(op, "a", a, dims=2)
        _check_operand(op, "a", spec.act_format, a, a_scale, a_global_scale, None, spec.k)
    expect(op, (bias is not None) == spec.has_bias, "bias presence differs from the spec")
    if bias is not None:
        expect_tensor(op, "bias", bias, shape=(spec.n,))


QUANTIZE_MX = OpDef(
    "quant.quantize_mx",
    quantize_mx,
    MXQuantSpec,
    _fake_quantize_mx,
    lambda p: MXQuantSpec(preferred_dtype(p), "mxfp8"),
    check_spec=_check_quantize_spec,
    check_args=_check_quantize,
)
MX_GEMM = OpDef(
    "quant.mx_gemm",
    mx_gemm,
    MXGemmSpec,
    _fake_mx_gemm,
    lambda p: MXGemmSpec(preferred_dtype(p), "mxfp4"),
    check_spec=_check_gemm_spec,
    check_args=_check_gemm,
    weights=("w", "w_scale", "w_global_scale"),
)
